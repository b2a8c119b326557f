export declare const TIERS: readonly ['fast', 'daemon', 'chain', 'peers', 'lab'];
export declare const inCI: boolean;
export declare function declaration(text: string): { tier: string; needs: string[] } | { error: string };
export declare function onPath(command: string): boolean;
export declare function lacking(needs: readonly string[]): string | null;
export declare function testFiles(dir: string): string[];
export declare function tierArgs(args: readonly string[]): { tiers: string[]; filters: string[] } | { error: string };
export declare function chooseFiles(
  files: readonly string[],
  testDir: string,
  filters: readonly string[],
  cwd: string,
): { chosen: string[]; unmatched: string[] };
