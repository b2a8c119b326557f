// What a fast file run in a worker thread (test/helpers/thread-file.mjs) could leave behind for the next file of the
// same thread: a global or a built-in's property changed, a process listener, process.env, the umask, an uncaught
// exception callback, and what still runs without keeping the thread alive (an unref'd timer, immediate, handle or
// worker thread would fire or be read in the next file's time). A file that leaves any of these ends its thread; the
// next file gets a new one. What keeps the thread alive (a ref'd timer or socket) needs no check: the thread's loop is
// empty when a file ends, by definition.
import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';

/** Timers, immediates, handles and worker threads unref'd and not yet ended, in the order they were unref'd. */
const unrefd = new Set();

/** The prototype of `object` (or of its prototypes) that owns `key`. */
function owner(object, key) {
  for (let p = object; p; p = Object.getPrototypeOf(p)) if (Object.hasOwn(p, key)) return p;
  return null;
}

/** Wraps `proto[key]` to run `then(this)` after it. */
function after(proto, key, then) {
  const original = proto[key];
  proto[key] = function (...args) {
    const result = original.apply(this, args);
    then(this);
    return result;
  };
}

/**
 * Starts keeping track of what is unref'd in this thread (call once, before any file runs): a Timeout's or
 * Immediate's unref (Node's timers and timers/promises, unref'd, go through them), an unref'd Timeout's refresh (it
 * runs again after it fired or was found ended), a libuv handle's (sockets, servers, child processes, watchers,
 * signals: HandleWrap's, whose close ends the tracking) and a Worker's.
 */
export function trackUnrefs() {
  const timer = setTimeout(() => {}, 0);
  const immediate = setImmediate(() => {});
  clearTimeout(timer);
  clearImmediate(immediate);
  for (const proto of [owner(timer, 'unref'), owner(immediate, 'unref'), Worker.prototype]) {
    after(proto, 'unref', (o) => unrefd.add(o));
    after(proto, 'ref', (o) => unrefd.delete(o));
  }
  after(owner(timer, 'refresh'), 'refresh', (t) => t.hasRef() || unrefd.add(t));
  // process.binding is Node's documented (deprecated, still supported) way to a handle class; TCP's prototypes lead
  // to HandleWrap's, which every libuv handle's wrap shares.
  const handleWrap = owner(process.binding('tcp_wrap').TCP.prototype, 'unref');
  after(handleWrap, 'unref', (h) => unrefd.add(h));
  after(handleWrap, 'ref', (h) => unrefd.delete(h));
  after(handleWrap, 'close', (h) => unrefd.delete(h));
}

/**
 * The ms until Node's undici's clock tick fires (its fast timers' `onTick`, every 499 ms while one of them is
 * armed, unref'd), or null when it is not pending.
 */
export function undiciTickDueMs() {
  const probe = setTimeout(() => {}, 0);
  const now = probe._idleStart; // the loop's time, as Node's timers count it
  clearTimeout(probe);
  let due = null;
  for (const o of unrefd) {
    if (o._onTimeout?.name !== 'onTick' || !stillRuns(o)) continue;
    due = Math.max(due ?? 0, o._idleStart + o._idleTimeout - now);
  }
  return due === null ? null : Math.max(0, due);
}

/** Whether something unref'd still runs (a timer not fired or cleared, a worker not exited, a handle not closed). */
function stillRuns(o) {
  if (o instanceof Worker) return o.threadId !== -1;
  if ('_destroyed' in o) return !o._destroyed;
  return true;
}

/** Objects whose own properties a file must leave as it found them. */
function owners() {
  const typedArray = Object.getPrototypeOf(Uint8Array);
  const named = {
    globalThis,
    Object,
    Function,
    Array,
    String,
    Number,
    Boolean,
    Symbol,
    BigInt,
    Promise,
    Date,
    RegExp,
    Error,
    TypeError,
    RangeError,
    SyntaxError,
    Map,
    Set,
    WeakMap,
    WeakSet,
    ArrayBuffer,
    Uint8Array,
    TypedArray: typedArray,
    Buffer,
    EventEmitter,
    URL,
  };
  const list = [];
  for (const [name, o] of Object.entries(named)) {
    list.push([name, o]);
    if (o !== globalThis) list.push([`${name}.prototype`, o.prototype]);
  }
  list.push(['Math', Math], ['JSON', JSON], ['Reflect', Reflect], ['process', process], ['console', console]);
  list.push(['inspect.defaultOptions', inspect.defaultOptions], ['process.stdout', process.stdout]);
  list.push(['process.stderr', process.stderr]);
  return list;
}

/** What EventEmitter keeps behind accessors, and the process's settings a thread can read. */
function settings() {
  return {
    'EventEmitter.defaultMaxListeners': EventEmitter.defaultMaxListeners,
    'EventEmitter.captureRejections': EventEmitter.captureRejections,
    'process.umask()': process.umask(),
    'process.cwd()': process.cwd(),
    'an uncaught exception capture callback': process.hasUncaughtExceptionCaptureCallback(),
  };
}

/** The emitters whose listeners a file must leave as it found them. */
const emitters = () => [
  ['process', process],
  ['process.stdout', process.stdout],
  ['process.stderr', process.stderr],
];
/**
 * Own properties an emitter keeps its listeners in (compared as listeners), and process.exitCode (the file's result).
 */
const skipped = (o, key) => key === '_events' || key === '_eventsCount' || (o === process && key === 'exitCode');

/** Each owner's own property descriptors, the process's listeners, process.env and the settings: as they are now. */
export function snapshot() {
  const props = owners().map(([name, o]) => {
    const descriptors = new Map();
    for (const key of Reflect.ownKeys(o)) {
      if (!skipped(o, key)) descriptors.set(key, Object.getOwnPropertyDescriptor(o, key));
    }
    return { name, o, descriptors };
  });
  const listeners = emitters().map(([name, o]) => ({
    name,
    o,
    listeners: new Map(o.eventNames().map((e) => [e, o.rawListeners(e)])),
  }));
  return { props, listeners, env: { ...process.env }, settings: settings() };
}

/** Whether `o` had its own property `key` in `before` (a snapshot). */
export function found(before, o, key) {
  return before.props.find((p) => p.o === o)?.descriptors.has(key) ?? false;
}

/** Takes `o[key]` as it is now as what the thread found (`before`: a snapshot): a value the thread set itself. */
export function adopt(before, o, key) {
  before.props.find((p) => p.o === o)?.descriptors.set(key, Object.getOwnPropertyDescriptor(o, key));
}

const label = (key) => (typeof key === 'symbol' ? key.toString() : key);

/**
 * Whether a property went from the lazy accessor Node defines some globals with (fetch, structuredClone, navigator…)
 * to the value that accessor gives: Node replaces the accessor with a data property as it is first read. The accessor
 * read again returns the value it loaded (it does not load again); a value assigned by a file is not that value.
 */
function materialized(o, was, is) {
  if (!was.get || !('value' in is)) return false;
  try {
    return was.get.call(o) === is.value;
  } catch {
    return false;
  }
}

function sameDescriptor(o, was, is) {
  if (!Object.is(was.value, is.value) || was.get !== is.get || was.set !== is.set) return materialized(o, was, is);
  return was.writable === is.writable && was.enumerable === is.enumerable && was.configurable === is.configurable;
}

/** What differs from `before` (a snapshot): one line each (with a count when repeated), empty when nothing does. */
export function leftovers(before) {
  const left = [];
  for (const { name, o, descriptors } of before.props) {
    for (const key of Reflect.ownKeys(o)) {
      if (skipped(o, key)) continue;
      const was = descriptors.get(key);
      const is = Object.getOwnPropertyDescriptor(o, key);
      if (!was) left.push(`${name}.${label(key)} added`);
      else if (!sameDescriptor(o, was, is)) left.push(`${name}.${label(key)} changed`);
    }
    for (const key of descriptors.keys()) if (!Object.hasOwn(o, key)) left.push(`${name}.${label(key)} deleted`);
  }
  for (const { name, o, listeners } of before.listeners) {
    for (const event of new Set([...listeners.keys(), ...o.eventNames()])) {
      const was = listeners.get(event) ?? [];
      const is = o.rawListeners(event);
      if (was.length !== is.length || was.some((l, i) => l !== is[i]))
        left.push(`a ${name} '${String(event)}' listener`);
    }
  }
  const env = { ...process.env };
  for (const key of new Set([...Object.keys(before.env), ...Object.keys(env)]))
    if (before.env[key] !== env[key]) left.push(`process.env.${key}`);
  const now = settings();
  for (const [key, value] of Object.entries(before.settings)) if (now[key] !== value) left.push(key);
  for (const o of unrefd) {
    if (stillRuns(o)) left.push(`an unref'd ${o.constructor?.name ?? 'handle'} still running`);
    else unrefd.delete(o);
  }
  const counts = new Map();
  for (const line of left) counts.set(line, (counts.get(line) ?? 0) + 1);
  return [...counts].map(([line, n]) => (n > 1 ? `${line} (${n})` : line));
}
