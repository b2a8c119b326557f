/**
 * How a usage report's row merges into a session's row, for the collector's one-report and batched writes alike:
 * bytes add up (each report carries what passed since the last), the state and the figures are the newest report's
 * (by its seq), so reports applied in any order leave the same row.
 */
export const SESSION_ROW_MERGE = `up_bytes = s.up_bytes + EXCLUDED.up_bytes,
    down_bytes = s.down_bytes + EXCLUDED.down_bytes,
    user_name = coalesce(s.user_name, EXCLUDED.user_name),
    state = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.state ELSE s.state END,
    used = CASE WHEN EXCLUDED.seq > s.seq THEN coalesce(EXCLUDED.used, s.used) ELSE s.used END,
    bytes = CASE WHEN EXCLUDED.seq > s.seq THEN coalesce(EXCLUDED.bytes, s.bytes) ELSE s.bytes END,
    allotment = CASE WHEN EXCLUDED.seq > s.seq THEN coalesce(EXCLUDED.allotment, s.allotment) ELSE s.allotment END,
    remaining = CASE WHEN EXCLUDED.seq > s.seq THEN coalesce(EXCLUDED.remaining, s.remaining) ELSE s.remaining END,
    updated_at = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.updated_at ELSE s.updated_at END,
    seq = greatest(s.seq, EXCLUDED.seq)`;
