export declare function idleCores(before: string, after: string, cores: number): number | null;
export declare function machineIdle(cores: number): () => number | null;
export declare function runLanes<T>(
  items: T[],
  options: {
    lanes: number;
    run: (item: T) => Promise<void>;
    most?: number;
    beside?: (item: T) => boolean;
    waits?: (item: T) => boolean;
    idle?: () => number | null;
    sampleMs?: number;
  },
): Promise<number>;
