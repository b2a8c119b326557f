// What a test helper gives back as its test file ends (a port it holds, a lock, a cache to write): in a fast file run
// in a worker thread that runs several files one after another (test/helpers/thread-file.mjs), the file ends before
// its thread does, and a process 'exit' listener left by the file would be a leftover that ends the thread. The thread
// emits FILE_END on process as a file ends, before it looks at what the file left; elsewhere (a file in a process of
// its own, a thread that ends with its file: an uncaught error) the process's or thread's exit does it.

/** The process event test/helpers/thread-file.mjs emits as each file ends. */
export const FILE_END = 'sluice:file-end';

/** Runs `fn` once, as the test file ends (above). */
export function atFileEnd(fn) {
  process.on('exit', fn);
  process.once(FILE_END, () => {
    process.off('exit', fn);
    fn();
  });
}
