import assert from "node:assert/strict";
import { test } from "node:test";
import {
  clientOf,
  ConnectionsPerAddress,
  defaultMaxConnectionsPerAddress,
} from "./connections-per-address.js";

test("the default share is a quarter of the cap, at least 64, never more than the cap", () => {
  assert.equal(defaultMaxConnectionsPerAddress(25_000), 6_250);
  assert.equal(defaultMaxConnectionsPerAddress(921), 230);
  assert.equal(defaultMaxConnectionsPerAddress(200), 64);
  assert.equal(defaultMaxConnectionsPerAddress(64), 64);
  assert.equal(defaultMaxConnectionsPerAddress(10), 10);
});

test("an IPv4 address is one client, however it is written; an IPv6 /64 is one client", () => {
  const table: Array<[string | undefined, string | undefined, boolean?]> = [
    ["203.0.113.9", "203.0.113.9", false],
    ["::ffff:203.0.113.9", "203.0.113.9", false],
    ["::ffff:cb00:7109", "203.0.113.9", false],
    ["64:ff9b::cb00:7109", "203.0.113.9", false], // NAT64
    ["2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64", false],
    ["2001:DB8:1:2:bbbb:cccc:dddd:eeee", "2001:db8:1:2::/64", false],
    ["2001:db8::5", "2001:db8:0:0::/64", false],
    ["2001:db8:0:0:1::", "2001:db8:0:0::/64", false],
    ["2001:db8:1:3::1", "2001:db8:1:3::/64", false],
    // 6to4: an internet client, one per IPv4 address (its /48)
    ["2002:c000:0204::1", "2002:c000:204::/48", false],
    ["2002:c000:204:ffff::1", "2002:c000:204::/48", false],
    ["127.0.0.1", "127.0.0.1", true],
    ["::ffff:127.0.0.2", "127.0.0.2", true],
    ["::1", "::1", true],
    ["10.0.0.7", "10.0.0.7", true],
    ["172.17.0.1", "172.17.0.1", true],
    ["192.168.1.1", "192.168.1.1", true],
    ["fd00::2", "fd00::2", true],
    ["fe80::1%eth0", "fe80::1", true],
    [undefined, undefined],
    ["not an address", undefined],
  ];
  for (const [address, key, local] of table) {
    const client = clientOf(address);
    assert.equal(client?.key, key, String(address));
    if (key !== undefined) assert.equal(client?.local, local, String(address));
  }
});

test("a client past its share is refused, and others are not", () => {
  const shares = new ConnectionsPerAddress({ maxPerAddress: 2 });
  assert.equal(shares.admit("203.0.113.9").admitted, true);
  assert.equal(shares.admit("::ffff:203.0.113.9").admitted, true);
  assert.deepEqual(shares.admit("203.0.113.9"), { admitted: false, client: "203.0.113.9" });
  assert.equal(shares.admit("198.51.100.1").admitted, true);
  // Another address in the same IPv6 /64 is the same client.
  assert.equal(shares.admit("2001:db8:1:2::1").admitted, true);
  assert.equal(shares.admit("2001:db8:1:2::2").admitted, true);
  assert.equal(shares.admit("2001:db8:1:2::3").admitted, false);
  assert.equal(shares.admit("2001:db8:1:3::1").admitted, true);
});

test("each connection's release gives its place back, once, and the count returns to zero", () => {
  const shares = new ConnectionsPerAddress({ maxPerAddress: 2 });
  const first = shares.admit("203.0.113.9");
  const second = shares.admit("::ffff:203.0.113.9");
  assert.ok(first.admitted && second.admitted);
  assert.equal(shares.admit("203.0.113.9").admitted, false);
  first.release();
  first.release(); // a second release must not free the other connection's place
  assert.equal(shares.heldBy("203.0.113.9"), 1);
  const third = shares.admit("203.0.113.9");
  assert.ok(third.admitted);
  assert.equal(shares.admit("203.0.113.9").admitted, false);
  second.release();
  third.release();
  assert.equal(shares.heldBy("203.0.113.9"), 0);
  assert.equal(shares.clients, 0, "a client with no connection is forgotten");
});

test("local clients are not limited unless asked; 0 limits nobody", () => {
  const shares = new ConnectionsPerAddress({ maxPerAddress: 1 });
  for (const address of ["127.0.0.1", "127.0.0.1", "::1", "::1", "10.0.0.7", "10.0.0.7"]) {
    assert.equal(shares.admit(address).admitted, true, address);
  }
  assert.equal(shares.clients, 0);
  const strict = new ConnectionsPerAddress({ maxPerAddress: 1, limitLocal: true });
  assert.equal(strict.admit("127.0.0.1").admitted, true);
  assert.equal(strict.admit("::ffff:127.0.0.1").admitted, false);
  const off = new ConnectionsPerAddress({ maxPerAddress: 0 });
  for (let i = 0; i < 100; i++) assert.equal(off.admit("203.0.113.9").admitted, true);
  assert.throws(() => new ConnectionsPerAddress({ maxPerAddress: -1 }), TypeError);
  assert.throws(() => new ConnectionsPerAddress({ maxPerAddress: 1.5 }), TypeError);
});
