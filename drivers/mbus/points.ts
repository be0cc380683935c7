/**
 * From decoded records to point ids and readings. Configured points pick a record by index or by
 * (quantity, storage, tariff, subunit, function); without configured points every record becomes
 * a point with a generated, stable id: slug(quantity) plus _s<storage>, _t<tariff>, _u<subunit>,
 * _max/_min/_err suffixes (e.g. energy, volume_s1, energy_s1_t1, power_max).
 */
import type { MbusRecord } from "./data.js";
import type { MbusPointConfig } from "./schema.js";

const fnSuffix: Record<string, string> = {
  instantaneous: "",
  maximum: "_max",
  minimum: "_min",
  error: "_err",
  manufacturer: "",
  more_records: "",
};

export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "")
      .slice(0, 48) || "value"
  );
}

export function autoPointIds(records: readonly MbusRecord[]): string[] {
  const seen = new Map<string, number>();
  return records.map((r) => {
    let id =
      r.function === "manufacturer" || r.function === "more_records"
        ? "manufacturer_data"
        : `${slug(r.quantity)}${r.storage ? `_s${r.storage}` : ""}${r.tariff ? `_t${r.tariff}` : ""}${r.subunit ? `_u${r.subunit}` : ""}${fnSuffix[r.function]}`;
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    if (n > 0) id = `${id}_${n + 1}`; // same quantity twice (e.g. two manufacturer VIFs)
    return id;
  });
}

export function findRecord(
  records: readonly MbusRecord[],
  p: MbusPointConfig,
): MbusRecord | undefined {
  if (p.record !== undefined) return records[p.record];
  const q = p.quantity!.toLowerCase();
  return records.find(
    (r) =>
      (r.quantity.toLowerCase() === q || slug(r.quantity) === slug(q)) &&
      r.storage === p.storage &&
      r.tariff === p.tariff &&
      r.subunit === p.subunit &&
      r.function === p.function,
  );
}
