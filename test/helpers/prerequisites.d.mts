export declare const TIERS: readonly ['fast', 'daemon', 'chain', 'peers', 'lab'];
export declare const inCI: boolean;
export declare function declaration(text: string): { tier: string; needs: string[] } | { error: string };
export declare function onPath(command: string): boolean;
export declare function lacking(needs: readonly string[]): string | null;
