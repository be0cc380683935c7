/**
 * Issue 14.2, broker side: with the SHIPPED docs/provisioning/mosquitto.conf and ACLs (paths and
 * ports aside) and real certificates, gateway A cannot take gateway B's client id (the broker
 * uses the certificate's CN as client id), cannot publish or subscribe under B's prefix, and B
 * stays connected throughout.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Mosquitto } from "../helpers/mosquitto.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { CLIENT_EXT, SERVER_EXT, makeCa, makeLeaf } from "../helpers/pki.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-sec-broker-"));
const docs = new URL("../../docs/provisioning/", import.meta.url);
let broker: Mosquitto;
let port: number;
let ca: ReturnType<typeof makeCa>;

beforeAll(async () => {
  ca = makeCa(dir, "ca", "ec");
  makeLeaf(dir, ca, "server", "server", SERVER_EXT, "ec");
  makeLeaf(dir, ca, "gw-a", "gw-a", CLIENT_EXT, "ec");
  makeLeaf(dir, ca, "gw-b", "gw-b", CLIENT_EXT, "ec");
  execFileSync("mosquitto_passwd", ["-b", "-c", join(dir, "passwd"), "enrol", "pw"]);
  for (const f of ["acl-gateways", "acl-enrolment"])
    writeFileSync(join(dir, f), readFileSync(new URL(f, docs), "utf8"));
  // Mosquitto started as root drops to its own user before reading these (test keys only).
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  port = await freePort();
  const enrolPort = await freePort();
  const conf = readFileSync(new URL("mosquitto.conf", docs), "utf8")
    .replaceAll("/etc/mosquitto/eclor/server.pem", join(dir, "server.pem"))
    .replaceAll("/etc/mosquitto/eclor/server.key", join(dir, "server.key"))
    .replaceAll("/etc/mosquitto/eclor/ca.pem", ca.cert)
    .replaceAll("/etc/mosquitto/eclor/", `${dir}/`)
    .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^listener 8884$/m, `listener ${enrolPort} 127.0.0.1`);
  broker = await Mosquitto.start({ port, listenerConfig: conf });
}, 60_000);

afterAll(async () => {
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function connectAs(name: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
    ca: readFileSync(ca.cert, "utf8"),
    cert: readFileSync(join(dir, `${name}.pem`), "utf8"),
    key: readFileSync(join(dir, `${name}.key`), "utf8"),
  });
}

describe("one gateway, one identity on the broker (issue 14.2)", () => {
  it("A cannot connect as B, nor publish or subscribe under B's prefix; B stays connected", async () => {
    const b = await connectAs("gw-b", "gw-b");
    let bClosed = false;
    b.on("close", () => (bClosed = true));
    const seenByB: string[] = [];
    b.on("message", (t) => seenByB.push(t));
    await b.subscribeAsync("eclor/v1/gw-b/cmd/#", { qos: 1 });

    // A presents B's client id: the broker uses A's certificate CN instead.
    const a = await connectAs("gw-a", "gw-b");
    const seenByA: string[] = [];
    a.on("message", (t) => seenByA.push(t));
    // Mosquitto grants a subscription and filters each delivery by the ACL.
    await a.subscribeAsync("eclor/v1/gw-b/#", { qos: 1 });
    await a
      .publishAsync("eclor/v1/gw-b/cmd/write", '{"id":"x"}', { qos: 1 })
      .catch(() => undefined);
    // B publishes in its own prefix: it sees its message, A sees nothing of B's, B got nothing
    // from A, and B was never disconnected.
    await b.publishAsync("eclor/v1/gw-b/cmd/ping", "{}", { qos: 1 });
    await waitFor(() => seenByB.length > 0, 5000, "B receives its own message");
    await a.publishAsync("eclor/v1/gw-a/state", "{}", { qos: 1 });
    expect(seenByA).toEqual([]);
    expect(seenByB).toEqual(["eclor/v1/gw-b/cmd/ping"]);
    expect(b.connected).toBe(true);
    expect(bClosed).toBe(false);
    expect(broker.log).not.toMatch(/already connected, closing old connection/);
    await a.endAsync();
    await b.endAsync();
  }, 30_000);
});
