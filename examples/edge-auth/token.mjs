// A stand-in identity provider for the edge-auth example (jose): `init DIR` writes an ES256 key pair (DIR/key.json)
// and its public JWKS (DIR/jwks.json); `sign DIR SCOPE [SUB]` prints a token for issuer https://issuer.example,
// audience orders, valid 10 minutes.
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [cmd, dir, scope = '', sub = 'alice'] = process.argv.slice(2);
if (cmd === 'init') {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  writeFileSync(path.join(dir, 'key.json'), JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'demo-1', alg: 'ES256' }), { mode: 0o600 });
  writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'demo-1', alg: 'ES256', use: 'sig' }] }));
} else if (cmd === 'sign') {
  const jwk = JSON.parse(readFileSync(path.join(dir, 'key.json'), 'utf8'));
  const key = await importJWK(jwk, 'ES256');
  const token = await new SignJWT({ scope })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
    .setIssuer('https://issuer.example')
    .setAudience('orders')
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
  process.stdout.write(token);
} else {
  console.error('usage: token.mjs init DIR | sign DIR SCOPE [SUB]');
  process.exit(2);
}
