import { describe, expect, test } from "bun:test";
import { vectorFromArray, Utf8 } from "apache-arrow";
import { utf8Strings } from "./utf8column.ts";

const same = (values: (string | null)[]) => {
  const v = vectorFromArray(values, new Utf8());
  expect(v.data.length).toBe(1);
  const got = utf8Strings(v.data[0]);
  expect(got).toEqual(values);
  expect(got).toEqual(Array.from(v.toArray() as unknown as (string | null)[]));
};

describe("utf8Strings", () => {
  test("ASCII ids, as apache-arrow decodes them", () => same(["read_5_chunk_1R2", "", "x", "read_8_chunk_1R2"]));
  test("non-ASCII values", () => same(["é", "read_ü", "😀x", "plain"]));
  test("nulls come back as null", () => same(["a", null, "c", null]));
  test("an empty column and a sliced one", () => {
    same([]);
    const v = vectorFromArray(["aa", "bbb", "c", "dddd"], new Utf8());
    const s = v.data[0].slice(1, 2);
    expect(utf8Strings(s)).toEqual(["bbb", "c"]);
  });
  test("invalid UTF-8 bytes become U+FFFD, like apache-arrow", () => {
    const v = vectorFromArray(["ab", "cd"], new Utf8());
    const d = v.data[0];
    (d.values as Uint8Array)[0] = 0xff;
    expect(utf8Strings(d)).toEqual(["\ufffdb", "cd"]);
    expect(utf8Strings(d)).toEqual(Array.from(v.toArray() as unknown as string[]));
  });
});
