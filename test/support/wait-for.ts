// The one polling wait, for this repository's tests; it ships in kube-conveyor/testing, so it lives in test/src.
export { waitFor } from '../src/wait-for.ts';
