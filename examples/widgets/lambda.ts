// The Widget controller as an AWS Lambda function: serverless.yml's `reconcile` points here.
import { lambdaHandler } from '@conveyor/workers/lambda/handler';
import widgets from './controller.ts';

export const handler = lambdaHandler(widgets);
