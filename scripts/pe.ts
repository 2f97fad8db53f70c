/**
 * Just enough of the Windows PE format to check ctbridge.exe on Linux: the
 * headers, the section table, the resource tree (where postject puts the
 * NODE_SEA_BLOB) and the Authenticode certificate table.
 */

export interface PeSection {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  rawOffset: number;
  rawSize: number;
}

export interface PeResource {
  /** Type, name and language path: numbers for ids, strings for names. */
  path: (number | string)[];
  fileOffset: number;
  size: number;
}

export interface PeImage {
  machine: number;
  /** 0x20b for PE32+ (64-bit). */
  magic: number;
  sections: PeSection[];
  resources: PeResource[];
  /** The Authenticode certificate table (data directory 4): a file offset and size, 0/0 when unsigned. */
  certificateTable: { offset: number; size: number; dirOffset: number };
}

export const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
export const RT_RCDATA = 10;

export function parsePe(buf: Buffer): PeImage {
  if (buf.toString('latin1', 0, 2) !== 'MZ') throw new Error('not a PE image: no MZ header');
  const pe = buf.readUInt32LE(0x3c);
  if (buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new Error('not a PE image: no PE signature');
  const coff = pe + 4;
  const machine = buf.readUInt16LE(coff);
  const sectionCount = buf.readUInt16LE(coff + 2);
  const optionalSize = buf.readUInt16LE(coff + 16);
  const opt = coff + 20;
  const magic = buf.readUInt16LE(opt);
  if (magic !== 0x20b && magic !== 0x10b) throw new Error(`unknown optional header magic 0x${magic.toString(16)}`);
  const dirs = opt + (magic === 0x20b ? 112 : 96);
  const dir = (i: number) => ({ rva: buf.readUInt32LE(dirs + i * 8), size: buf.readUInt32LE(dirs + i * 8 + 4), dirOffset: dirs + i * 8 });
  const sections: PeSection[] = [];
  for (let i = 0, s = opt + optionalSize; i < sectionCount; i++, s += 40) {
    sections.push({
      name: buf.toString('latin1', s, s + 8).replace(/\0+$/, ''),
      virtualSize: buf.readUInt32LE(s + 8),
      virtualAddress: buf.readUInt32LE(s + 12),
      rawSize: buf.readUInt32LE(s + 16),
      rawOffset: buf.readUInt32LE(s + 20),
    });
  }
  const toOffset = (rva: number): number => {
    const sec = sections.find((x) => rva >= x.virtualAddress && rva < x.virtualAddress + Math.max(x.virtualSize, x.rawSize));
    if (!sec) throw new Error(`RVA 0x${rva.toString(16)} is in no section`);
    return rva - sec.virtualAddress + sec.rawOffset;
  };
  const resources: PeResource[] = [];
  const rsrc = dir(2);
  if (rsrc.rva) {
    const base = toOffset(rsrc.rva);
    const walk = (at: number, path: (number | string)[]): void => {
      const named = buf.readUInt16LE(at + 12);
      const ids = buf.readUInt16LE(at + 14);
      for (let i = 0; i < named + ids; i++) {
        const e = at + 16 + i * 8;
        const nameField = buf.readUInt32LE(e);
        const target = buf.readUInt32LE(e + 4);
        let key: number | string = nameField;
        if (nameField & 0x80000000) {
          const n = base + (nameField & 0x7fffffff);
          key = buf.toString('utf16le', n + 2, n + 2 + buf.readUInt16LE(n) * 2);
        }
        if (target & 0x80000000) walk(base + (target & 0x7fffffff), [...path, key]);
        else {
          const d = base + target;
          resources.push({ path: [...path, key], fileOffset: toOffset(buf.readUInt32LE(d)), size: buf.readUInt32LE(d + 4) });
        }
      }
    };
    walk(base, []);
  }
  const cert = dir(4);
  return { machine, magic, sections, resources, certificateTable: { offset: cert.rva, size: cert.size, dirOffset: cert.dirOffset } };
}

/**
 * Drop the Authenticode signature: injecting the SEA blob invalidates it, and
 * an unsigned image is what `signtool sign` expects. The certificate table
 * sits at the end of the file; the data directory entry is zeroed and the
 * table cut off. Returns the new image (the same buffer if it was unsigned).
 */
export function stripSignature(buf: Buffer): Buffer {
  const { certificateTable: t } = parsePe(buf);
  if (!t.size) return buf;
  const out = Buffer.from(buf);
  out.writeUInt32LE(0, t.dirOffset);
  out.writeUInt32LE(0, t.dirOffset + 4);
  return t.offset + t.size >= buf.length - 8 ? out.subarray(0, t.offset) : out;
}
