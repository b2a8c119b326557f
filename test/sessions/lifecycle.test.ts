// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { activate, endSession, expire, terminate } from '../../src/sessions/lifecycle.ts';
import { END_CAUSES, LIMIT_CAUSES, TERMINATE_CAUSES, remaining, usedAt } from '../../src/sessions/model.ts';
import type { EndCause, Session, SessionState } from '../../src/sessions/model.ts';
import { isSluiceError } from '../../src/errors.ts';

const T0 = 1_700_000_000_000;

function session(state: SessionState, over: Partial<Session> = {}): Session {
  return {
    id: '0123456789abcdef',
    mac: 'aa:bb:cc:dd:ee:ff',
    ip: null,
    user: null,
    plan: null,
    metric: 'seconds',
    allotment: 600n,
    used: 0,
    bytes: 0,
    createdAt: T0,
    startedAt: T0,
    expiresAt: T0 + 600_000,
    endedAt: null,
    state,
    endCause: null,
    payments: [],
    ...over,
  };
}

function throwsState(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_SESSION_STATE'), `expected ERR_SESSION_STATE, got ${String(err)}`);
    return;
  }
  assert.unreachable('should have thrown ERR_SESSION_STATE');
}

test('PENDING → ACTIVE is legal and returns a new object', () => {
  const s = session('PENDING');
  const a = activate(s);
  assert.is(a.state, 'ACTIVE');
  assert.is(s.state, 'PENDING');
});

test('ACTIVE → EXPIRED for each limit cause, with endedAt and cause', () => {
  for (const cause of LIMIT_CAUSES) {
    const e = expire(session('ACTIVE'), cause, T0 + 5);
    assert.is(e.state, 'EXPIRED');
    assert.is(e.endCause, cause);
    assert.is(e.endedAt, T0 + 5);
    assert.is(endSession(session('ACTIVE'), cause, T0).state, 'EXPIRED');
  }
});

test('ACTIVE and PENDING → TERMINATED for each non-limit cause', () => {
  for (const from of ['ACTIVE', 'PENDING'] as const) {
    for (const cause of TERMINATE_CAUSES) {
      const t = terminate(session(from), cause, T0 + 9);
      assert.is(t.state, 'TERMINATED');
      assert.is(t.endCause, cause);
      assert.is(endSession(session(from), cause, T0).state, 'TERMINATED');
    }
  }
});

test('every other transition throws ERR_SESSION_STATE', () => {
  for (const from of ['ACTIVE', 'EXPIRED', 'TERMINATED'] as const) throwsState(() => activate(session(from)));
  for (const from of ['PENDING', 'EXPIRED', 'TERMINATED'] as const) {
    for (const cause of LIMIT_CAUSES) throwsState(() => expire(session(from), cause, T0));
  }
  for (const from of ['EXPIRED', 'TERMINATED'] as const) {
    for (const cause of END_CAUSES) throwsState(() => endSession(session(from), cause, T0));
  }
  // A cause of the wrong kind for the target state.
  throwsState(() => expire(session('ACTIVE'), 'admin' as never, T0));
  throwsState(() => terminate(session('ACTIVE'), 'time-limit' as never, T0));
  throwsState(() => terminate(session('ACTIVE'), 'bogus' as never, T0));
  throwsState(() => endSession(session('ACTIVE'), 'bogus' as EndCause, T0));
});

test('remaining and used for a time session follow the clock', () => {
  const s = session('ACTIVE');
  assert.is(remaining(s, T0), 600n);
  assert.is(remaining(s, T0 + 599_001), 1n);
  assert.is(remaining(s, T0 + 600_000), 0n);
  assert.is(remaining(s, T0 + 9_999_999), 0n);
  assert.is(usedAt(s, T0 + 61_500), 61);
  assert.is(usedAt(s, T0 + 10_000_000), 600, 'used never passes the allotment');
  assert.is(usedAt(s, T0 - 5000), 0, 'a clock before the start is not negative use');
  assert.is(remaining(expire(s, 'time-limit', T0 + 1), T0 + 1), 0n);
});

test('remaining for a data session is allotment - used, never negative', () => {
  const s = session('ACTIVE', { metric: 'bytes', allotment: 1000n, used: 400, expiresAt: null });
  assert.is(remaining(s, T0), 600n);
  assert.is(remaining({ ...s, used: 1500 }, T0), 0n);
  assert.is(usedAt(s, T0 + 1e9), 400);
});

test.run();
