/**
 * The simulator's own TIC encoder (Enedis-NOI-CPT_54E §5.3, ERDF-NOI-CPT_02E §6), written apart
 * from drivers/tic/frame.ts on purpose (issue 19.8): a checksum bug in the driver must not be
 * written twice and cancel out. Group: LF LABEL SEP [HORODATE SEP] DATA SEP CHK CR, frame: STX
 * groups ETX. CHK = (sum of the covered bytes & 3Fh) + 20h; historic mode (SEP = SP) sums LABEL
 * SP DATA, standard mode (SEP = HT) sums up to and including the last HT.
 */

export type SimTicMode = "historic" | "standard";

function chk(text: string): string {
  let sum = 0;
  for (let i = 0; i < text.length; i++) sum += text.charCodeAt(i);
  return String.fromCharCode((sum & 0x3f) + 0x20);
}

/** One group with LF and CR, as a meter writes it. */
export function ticGroup(mode: SimTicMode, label: string, data: string, horodate?: string): Buffer {
  const text =
    mode === "historic"
      ? `${label} ${data}`
      : `${label}\t${horodate !== undefined ? `${horodate}\t` : ""}${data}\t`;
  const line = mode === "historic" ? `${text} ${chk(text)}` : `${text}${chk(text)}`;
  return Buffer.from(`\n${line}\r`, "latin1");
}

/** STX groups ETX. */
export function ticFrame(groups: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([0x02]), ...groups, Buffer.from([0x03])]);
}
