/**
 * Source of the codec sandbox worker thread. It is evaluated with `new Worker(src, {eval: true})`
 * because a worker needs a JavaScript file and this project runs from TypeScript sources in tests
 * and from dist/ in production; a string works in both without a copy step.
 *
 * Inside, one QuickJS runtime runs one codec. Three limits (see README "Codec sandbox"):
 *  - time: QuickJS interrupt handler with a deadline (checked on QuickJS's internal op counter);
 *  - object heap: runtime.setMemoryLimit;
 *  - large strings/arrays: setMemoryLimit does not bound them in quickjs-emscripten 0.32
 *    (justjake/quickjs-emscripten#255, #271), so WebAssembly.Memory.prototype.grow is capped in
 *    this worker's realm: growth past the cap fails, emscripten's malloc returns NULL and QuickJS
 *    throws "out of memory" instead of growing the process to 2 GiB.
 * The main thread adds a watchdog that terminates the worker if a call runs too long anyway; it
 * reads the start time of the running call from shared memory, so a busy main thread (replies
 * not yet handled) is never mistaken for a stuck codec.
 *
 * Messages in:  {id, op: "decode"|"encode", input} ; out: {id, ok, value?, error?, kind?} and
 * once {ready: true} (or {fatal: message}).
 */
export const CODEC_WORKER_SOURCE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { quickjsPath, source, name, timeoutMs, memoryBytes, heartbeat } = workerData;
// Shared with the main thread's watchdog: [0] = start time (ms) of the running call, 0 when idle.
const beat = new Float64Array(heartbeat);

async function main() {
  const { newQuickJSWASMModule, shouldInterruptAfterDeadline } = require(quickjsPath);
  const Q = await newQuickJSWASMModule();
  const memory = Q.getWasmMemory();
  const cap = memory.buffer.byteLength + memoryBytes;
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function (pages) {
    if (this === memory && this.buffer.byteLength + pages * 65536 > cap) throw new RangeError("codec memory limit");
    return grow.call(this, pages);
  };

  const WRAPPER = "\n;function __eclor_call(op, json) {" +
    "var input = JSON.parse(json);" +
    "if (op === 'decode') { input.recvTime = new Date(input.recvTime); input.variables = {};" +
    // TTN v3 / ChirpStack v4 first; then the legacy entry points, which return the data itself:
    // TTN v2 Decoder(bytes, port) and ChirpStack v3 Decode(fPort, bytes, variables).
    "if (typeof decodeUplink === 'function') return JSON.stringify(decodeUplink(input));" +
    "if (typeof Decoder === 'function') return JSON.stringify({ data: Decoder(input.bytes, input.fPort) });" +
    "if (typeof Decode === 'function') return JSON.stringify({ data: Decode(input.fPort, input.bytes, input.variables) });" +
    "throw new Error('the codec has no decodeUplink (TTN v3), Decoder (TTN v2) or Decode (ChirpStack v3) function'); }" +
    "if (typeof encodeDownlink !== 'function') throw new Error('the codec has no encodeDownlink function');" +
    "return JSON.stringify(encodeDownlink(input)); }";

  let rt, ctx, fn;
  function open() {
    rt = Q.newRuntime();
    rt.setMemoryLimit(memoryBytes);
    rt.setMaxStackSize(256 * 1024);
    ctx = rt.newContext();
    rt.setInterruptHandler(shouldInterruptAfterDeadline(Date.now() + Math.max(timeoutMs, 1000)));
    const r = ctx.evalCode(source + WRAPPER, name + ".js");
    if (r.error) {
      const e = ctx.dump(r.error);
      r.error.dispose();
      close();
      throw new Error("codec " + name + " does not load: " + (e && e.message ? e.message : String(e)));
    }
    r.value.dispose();
    fn = ctx.getProp(ctx.global, "__eclor_call");
  }
  function close() {
    if (fn) fn.dispose();
    if (ctx) ctx.dispose();
    if (rt) rt.dispose();
    fn = ctx = rt = undefined;
  }
  function call(op, input) {
    rt.setInterruptHandler(shouldInterruptAfterDeadline(Date.now() + timeoutMs));
    const opH = ctx.newString(op);
    const arg = ctx.newString(JSON.stringify(input));
    const started = Date.now();
    const res = ctx.callFunction(fn, ctx.undefined, opH, arg);
    opH.dispose();
    arg.dispose();
    if (res.error) {
      let e = ctx.dump(res.error);
      res.error.dispose();
      const message = e && typeof e === "object" && "message" in e ? String(e.message) : String(e);
      let kind = "exception";
      if (message === "interrupted") kind = "timeout";
      else if (message === "out of memory" || /memory limit|stack overflow|too long/.test(message)) kind = "memory";
      // After a timeout or memory exhaustion the codec's globals may be half-updated: start afresh.
      if (kind !== "exception") { close(); open(); }
      return { ok: false, kind, error: kind === "timeout" ? "codec exceeded its time limit of " + timeoutMs + " ms" : message, ms: Date.now() - started };
    }
    const s = ctx.getString(res.value);
    res.value.dispose();
    return { ok: true, value: s === undefined || s === "undefined" ? null : JSON.parse(s) };
  }

  try { open(); } catch (e) { parentPort.postMessage({ fatal: e.message }); return; }
  parentPort.on("message", (m) => {
    let out;
    beat[0] = Date.now();
    try { out = call(m.op, m.input); } catch (e) { out = { ok: false, kind: "crashed", error: String(e && e.message || e) }; }
    beat[0] = 0;
    out.id = m.id;
    parentPort.postMessage(out);
    if (out.kind === "crashed") process.exit(3);
  });
  parentPort.postMessage({ ready: true });
}
main().catch((e) => { parentPort.postMessage({ fatal: String(e && e.message || e) }); });
`;
