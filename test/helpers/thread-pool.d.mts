export interface ThreadRun {
  text: string;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  cpuMs: number;
  runqMs: number;
  thread: number;
  files: number;
  left: string[] | null;
}
export interface CpuSplit {
  main: number;
  helpers: number;
  files: number;
}
export declare class ThreadHost {
  constructor(options: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    slots?: (module: string) => string[];
    started?: (pid: number) => void;
    ended?: (pid: number) => void;
  });
  run(module: string, timeoutMs: number, ownThread?: boolean): Promise<ThreadRun>;
  cpuMs(): number | null;
  cpuSplitMs(): CpuSplit | null;
  close(): Promise<(CpuSplit & { peakRssKb: number }) | null>;
}
