/**
 * CRC-32 (IEEE, as zlib's crc32) lookup table, for the places that run a CRC byte by byte
 * over bytes they are writing or reading anyway instead of calling zlib per piece: the
 * journal lines' suffix (journal-lines.ts) and the share baseline's path keys
 * (guard/core/baseline-table.ts). Step: `c = CRC32_TABLE[(c ^ byte) & 255] ^ (c >>> 8)`,
 * starting from `~crc` of what came before (-1 for nothing) and ending with `~c >>> 0`.
 */
export const CRC32_TABLE: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();
