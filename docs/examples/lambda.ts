// The Lambda entry point of docs/deploying-to-lambda.md: serverless.yml's handler points at `handler`.
// --- handler ---
import { lambdaHandler } from '@conveyor/workers/lambda/handler';
import greetings from './first-controller.ts';

export const handler = lambdaHandler(greetings);
// --- end handler ---
