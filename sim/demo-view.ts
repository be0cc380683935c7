/**
 * The demo's live view: one line per device of each telemetry message, one per event, and the
 * commands and responses, as the hypervisor (a subscriber on eclor/v1/#) receives them.
 */
const tty = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const c = (code: number) => (s: string) => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
export const dim = c(2);
const red = c(31);
const green = c(32);
export const yellow = c(33);
const magenta = c(35);
const cyan = c(36);
export const bold = c(1);

const clock = (t: number) => new Date(t).toTimeString().slice(0, 8);

function fmt(v: unknown): string {
  return typeof v === "number" ? String(Math.round(v * 100) / 100) : String(v);
}

/** Write one line, cut to the terminal's width on a TTY. */
function line(text: string): void {
  const width = process.stdout.columns ?? 160;
  // eslint-disable-next-line no-control-regex
  const visible = text.replace(/\u001b\[\d+m/g, "");
  process.stdout.write(
    `${visible.length > width && tty ? `${text.slice(0, width + (text.length - visible.length) - 1)}…` : text}\n`,
  );
}

/** A SenML record of a telemetry message, as much of it as the view shows. */
interface Rec {
  n?: string;
  seq?: number;
  v?: number;
  vb?: boolean;
  vs?: string;
  u?: string;
  q?: string;
}

function showTelemetry(payload: { records?: Rec[] }): void {
  const recs = payload.records ?? [];
  if (recs.length === 0) return;
  const byDevice = new Map<string, string[]>();
  for (const r of recs) {
    const [dev, point] = (r.n ?? "?/?").split("/");
    const value = r.v ?? r.vb ?? r.vs;
    const text = r.q
      ? red(`${point} ${String(r.q)}`)
      : `${point} ${bold(fmt(value))}${r.u ? ` ${String(r.u)}` : ""}`;
    byDevice.set(dev!, [...(byDevice.get(dev!) ?? []), text]);
  }
  const seqs = recs.map((r) => Number(r.seq));
  for (const [dev, parts] of byDevice)
    line(
      `${dim(clock(Date.now()))} ${cyan("telemetry")} ${dim(`#${Math.min(...seqs)}-${Math.max(...seqs)}`)} ${dev}: ${parts.join(dim(" · "))}`,
    );
}

/** The MQTT message handler of the hypervisor's subscriber (topics <prefix>/<gateway>/<kind>). */
export function show(topic: string, buf: Buffer): void {
  const kind = topic.split("/").slice(3).join("/");
  const at = dim(clock(Date.now()));
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(buf.toString()) as Record<string, unknown>;
  } catch {
    return line(`${at} ${kind} ${buf.length} bytes`);
  }
  if (kind === "telemetry") return showTelemetry(payload);
  if (kind === "events") {
    const recs = (payload.records as Record<string, unknown>[] | undefined) ?? [payload];
    for (const e of recs as { severity?: string; type?: string; message?: string }[]) {
      const sev = e.severity ?? "info";
      const paint = sev === "error" ? red : sev === "warning" ? yellow : green;
      line(`${at} ${paint(`event ${e.type ?? "?"}`)} ${e.message ?? ""}`);
    }
    return;
  }
  if (kind === "state")
    return line(`${at} ${green("state")} ${JSON.stringify(payload).slice(0, 200)}`);
  // The demo's own request (MQTT 3.1.1 delivers it back to its subscriber) and the response.
  if (kind.startsWith("cmd/"))
    return line(`${at} ${magenta(`hypervisor → ${kind}`)} ${JSON.stringify(payload)}`);
  if (kind.startsWith("res/"))
    return line(
      `${at} ${(payload.ok ? green : red)(`response ${kind.slice(4)}`)} ${JSON.stringify(payload)}`,
    );
  line(`${at} ${kind} ${JSON.stringify(payload).slice(0, 160)}`);
}
