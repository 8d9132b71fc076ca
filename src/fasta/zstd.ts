/**
 * The frame structure of a zstd stream (RFC 8878), followed without decompressing: enough to
 * tell a complete stream from a truncated one or from trailing bytes that are not zstd, which
 * the streaming decompressor lets pass silently.
 */

const ZSTD_MAGIC = 0xfd2fb528;

/** Feed the compressed bytes in order; feed() and end() return an error message, or null. */
export class ZstdFrames {
  /** bytes of the current field gathered so far */
  private field = new Uint8Array(14);
  private have = 0;
  /** what the next bytes are */
  private state: "magic" | "descriptor" | "header" | "block" | "skip-size" | "skip" | "content" | "checksum" = "magic";
  private need = 4;
  private toSkip = 0;
  private lastBlock = false;
  private checksum = false;
  private offset = 0;
  private frames = 0;

  feed(b: Uint8Array): string | null {
    let i = 0;
    while (i < b.length) {
      if (this.state === "skip" || this.state === "content") {
        const k = Math.min(this.toSkip, b.length - i);
        this.toSkip -= k;
        i += k;
        this.offset += k;
        if (this.toSkip === 0) {
          const err = this.afterSkip();
          if (err) return err;
        }
        continue;
      }
      const k = Math.min(this.need - this.have, b.length - i);
      this.field.set(b.subarray(i, i + k), this.have);
      this.have += k;
      i += k;
      this.offset += k;
      if (this.have === this.need) {
        const err = this.fieldDone();
        if (err) return err;
      }
    }
    return null;
  }

  /** At the end of the input: null when it ends between frames (and held at least one). */
  end(): string | null {
    if (this.state === "magic" && this.have === 0) return this.frames > 0 ? null : "no zstd frame";
    return `the zstd data ends inside a frame at byte ${this.offset}: the file is truncated`;
  }

  private u32(at: number): number {
    const f = this.field;
    return (f[at] | (f[at + 1] << 8) | (f[at + 2] << 16) | (f[at + 3] << 24)) >>> 0;
  }

  private expect(state: ZstdFrames["state"], need: number) {
    this.state = state;
    this.need = need;
    this.have = 0;
  }

  private fieldDone(): string | null {
    switch (this.state) {
      case "magic": {
        const m = this.u32(0);
        if (m === ZSTD_MAGIC) this.expect("descriptor", 1);
        else if ((m & 0xfffffff0) >>> 0 === 0x184d2a50) this.expect("skip-size", 4);
        else return `bytes that are not zstd data follow the zstd frames at byte ${this.offset - 4}`;
        return null;
      }
      case "descriptor": {
        const d = this.field[0];
        if (d & 0x08) return `a zstd frame header with the reserved bit set at byte ${this.offset - 1}`;
        const fcsFlag = d >> 6;
        const single = (d >> 5) & 1;
        this.checksum = ((d >> 2) & 1) === 1;
        const dict = [0, 1, 2, 4][d & 3];
        const fcs = [single ? 1 : 0, 2, 4, 8][fcsFlag];
        const rest = (single ? 0 : 1) + dict + fcs;
        this.lastBlock = false;
        if (rest > 0) this.expect("header", rest);
        else this.expect("block", 3);
        return null;
      }
      case "header":
        this.expect("block", 3);
        return null;
      case "block": {
        const h = this.field[0] | (this.field[1] << 8) | (this.field[2] << 16);
        this.lastBlock = (h & 1) === 1;
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) return `a zstd block of the reserved type at byte ${this.offset - 3}`;
        this.toSkip = type === 1 ? 1 : size;
        this.state = "content";
        if (this.toSkip === 0) return this.afterSkip();
        return null;
      }
      case "skip-size":
        this.toSkip = this.u32(0);
        this.state = "skip";
        if (this.toSkip === 0) return this.afterSkip();
        return null;
      case "checksum":
        this.frames++;
        this.expect("magic", 4);
        return null;
      default:
        return null;
    }
  }

  private afterSkip(): string | null {
    if (this.state === "skip") {
      this.expect("magic", 4);
      return null;
    }
    // end of a block's content
    if (!this.lastBlock) this.expect("block", 3);
    else if (this.checksum) this.expect("checksum", 4);
    else {
      this.frames++;
      this.expect("magic", 4);
    }
    return null;
  }
}
