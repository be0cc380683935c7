import { it } from "vitest";
import { Platform } from "/work/main/test/integration/provision-fixture.js";
it("x", async () => {
  const p = await Platform.start({ service: false });
  console.log(p.mtlsPort, p.enrolPort, p.broker.log);
  try { await p.startService(1000); } catch (e) { console.log("ERR", e, p.broker.log); }
  console.log(require("fs").readFileSync(p.broker.dir + "/mosquitto.conf", "utf8"));
  await p.dispose();
});
