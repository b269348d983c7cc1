// An identity provider whose JWKS publishes a key that cannot be used (an RSA key under 2,048
// bits, which older providers still publish, or EC numbers that are no point of the curve) made
// jose throw a TypeError or WebCrypto a DataError, which POST /tokens took for a bug of its own:
// 500 server_error, logged as unexpected. It is the provider's key that is at fault: now a 403
// invalid_grant with code jwks-key-unusable.
import assert from "node:assert/strict";
import { createSign, generateKeyPairSync, sign } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { TokenExchange } from "../../src/auth/token-exchange/exchange.js";
import { startApiServer, type ApiServer } from "../support/api-server.js";

const KID = "k1";

/** Each identity provider (its name is its JWKS path and service): the key it publishes, its alg. */
const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const OFF_CURVE = Buffer.alloc(32, 7).toString("base64url");
const PROVIDERS = {
  "small-rsa": { alg: "RS256", jwk: rsa.publicKey.export({ format: "jwk" }) },
  "off-curve": { alg: "ES256", jwk: { kty: "EC", crv: "P-256", x: OFF_CURVE, y: OFF_CURVE } },
} as const;
type Provider = keyof typeof PROVIDERS;
const issuerOf = (name: Provider) => `https://${name}.example.test/`;

let api: ApiServer;
let jwks: Server;

before(async () => {
  api = await startApiServer();
  const { services } = api.server;
  // JWKS over http on loopback: the development option, for the local identity provider below.
  services.tokenExchange = new TokenExchange(
    { store: services.store, clock: services.clock, logger: services.logger },
    { allowLoopbackJwks: true },
  );
  jwks = createServer((request, response) => {
    const name = (request.url ?? "").slice(1) as Provider;
    const { alg, jwk } = PROVIDERS[name];
    const keys = [{ ...jwk, kid: KID, alg, use: "sig" }];
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const key = await api.createKey(["state.read"]);
  for (const [name, { alg }] of Object.entries(PROVIDERS)) {
    const idp = await api.admin("POST", "/idps", {
      iss: issuerOf(name as Provider),
      algs: [alg],
      jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/${name}`,
      mapping: { "sub.$": "$.sub" },
    });
    assert.equal(idp.status, 204, JSON.stringify(idp.body));
    const provider = await api.admin("POST", "/token-providers", {
      service: name,
      keyId: key.id,
      mapping: { "sub.$": "$.sub" },
    });
    assert.equal(provider.status, 204, JSON.stringify(provider.body));
  }
});
after(async () => {
  jwks.closeAllConnections();
  await new Promise((resolve) => jwks.close(resolve));
  await api.dispose();
});

/** A token for the provider, signed with node:crypto (jose itself refuses the small RSA key). */
function subjectToken(name: Provider): string {
  const { alg } = PROVIDERS[name];
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: "u1", iss: issuerOf(name), iat: now, exp: now + 600 };
  const input = `${encode({ alg, kid: KID })}.${encode(claims)}`;
  const signature =
    alg === "RS256"
      ? createSign("RSA-SHA256").update(input).sign(rsa.privateKey, "base64url")
      : sign("sha256", Buffer.from(input), {
          key: ec.privateKey,
          dsaEncoding: "ieee-p1363",
        }).toString("base64url");
  return `${input}.${signature}`;
}

test("a JWKS key that cannot be used is the identity provider's fault: 403, not 500", async () => {
  for (const name of Object.keys(PROVIDERS) as Provider[]) {
    const { status, body } = await api.exchangeToken(name, subjectToken(name));
    assert.equal(status, 403, `${name}: ${JSON.stringify(body)}`);
    assert.equal(body.error, "invalid_grant", name);
    assert.equal(body.code, "jwks-key-unusable", name);
    assert.equal(body.access_token, undefined, name);
  }
});
