export declare const FILE_END: string;
export declare function atFileEnd(fn: () => void): void;
