export declare const SLOTS: number;
export declare function bundleTests(
  files: string[],
  repo: string,
): Promise<{
  outputs: Map<string, string>;
  imports: Map<string, string[]>;
  built: boolean;
  slots: (bundle: string) => string[];
}>;
export declare const SHARED: string[];
