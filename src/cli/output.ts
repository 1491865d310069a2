// Printing for the CLI: aligned tables, JSON, sizes and times in a human form.

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** One compact JSON document per line (for streams a program reads line by line). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function printLine(text: string): void {
  process.stdout.write(text + '\n');
}

/** Messages about what happened, kept off stdout so that stdout stays parseable. */
export function printNote(text: string): void {
  process.stderr.write(text + '\n');
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function printTable(header: readonly string[] | undefined, rows: readonly (readonly string[])[]): void {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const row of all) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  for (const row of all) {
    printLine(
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
  }
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** Decimal units as storage systems count them: 5000000 → "5.0 MB". */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Milliseconds since the epoch (or an ISO string) as "2025-01-31 14:05:09" in local time. */
export function formatTime(time: number | string | null | undefined): string {
  if (time === null || time === undefined) return '-';
  const d = new Date(time);
  if (Number.isNaN(d.getTime())) return String(time);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Names in code-point order, as `LC_ALL=C ls` sorts them: stable across machines and locales. */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
