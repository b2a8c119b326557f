// The sessions tests' name for the one fake clock (test/helpers/fake-time.ts).
export { FakeTime, settle } from '../helpers/fake-time.ts';
