// The Lambda entry point of docs/deploying-to-lambda.md, as you would write it by hand: `conveyor build` bundles the same.
// --- handler ---
import { lambdaHandler } from 'kube-conveyor/lambda';
import greetings from './greetings/controller.ts';

export const handler = lambdaHandler(greetings);
// --- end handler ---
