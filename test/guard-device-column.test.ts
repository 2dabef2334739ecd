/**
 * The index's per-slot device numbers (src/guard/core/device-column.ts): a byte per slot
 * into a table of distinct devices, widened to a Float64 per slot past 256 of them, and
 * every slot reads back exactly what was set, across growth and widening.
 */
import { describe, expect, it } from 'vitest';
import { DeviceColumn } from '../src/guard/core/device-column.js';

describe('DeviceColumn', () => {
  it('keeps each slot’s device through growth, with a byte per slot for a few devices', () => {
    const column = new DeviceColumn();
    column.grow(4);
    // Real st_dev values: a local disk, a bind mount, an NFS mount (dev_t above 2^32 on some systems).
    const devices = [2049, 64768, 2 ** 40 + 7];
    for (let f = 0; f < 4; f++) column.set(f, devices[f % 3]!);
    column.grow(1000);
    for (let f = 4; f < 1000; f++) column.set(f, devices[f % 3]!);
    for (let f = 0; f < 1000; f++) expect(column.get(f)).toBe(devices[f % 3]);
    expect(column.wide).toBe(false);
    // A slot set again takes its new device.
    column.set(7, 2049);
    expect(column.get(7)).toBe(2049);
  });

  it('widens past 256 distinct devices, keeping every value set before and after', () => {
    const column = new DeviceColumn();
    column.grow(600);
    const dev = (f: number) => 1_000_000 + f; // every slot on its own device
    for (let f = 0; f < 600; f++) column.set(f, dev(f));
    expect(column.wide).toBe(true);
    for (let f = 0; f < 600; f++) expect(column.get(f)).toBe(dev(f));
    column.grow(1200);
    for (let f = 600; f < 1200; f++) column.set(f, dev(f));
    for (let f = 0; f < 1200; f++) expect(column.get(f)).toBe(dev(f));
  });
});
