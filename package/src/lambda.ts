// kube-conveyor/lambda: a controller's reconcile as an AWS Lambda handler (`export const handler = lambdaHandler(controller)`).
export { type LambdaContext, type LambdaHandlerOptions, lambdaHandler, type ReconcileHandler } from '@conveyor/workers/lambda/handler';
