/** The benches' settings from the environment (BENCH_SECONDS and the like). */

/** An integer ≥ `min` from `process.env[name]`, or `fallback` when unset or empty. */
export function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer ≥ ${min}, got '${raw}'`);
  return n;
}
