export declare const PACKAGE_LOADER: string;
export declare const CACHE_DIR: string;
export declare function cacheFile(root: string, source: string): string | null;
export declare function importBundle(entry: string): Promise<unknown>;
