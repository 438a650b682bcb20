// Turning on two-step sign-in from the account page, in Chromium (issue 15): sign in with the
// password, "Add an authenticator app", scan (here: read the key under the QR code and compute
// the code the way an app does, RFC 6238, written here from the RFC), "Turn on", the recovery
// codes shown once, and the account page listing the app.
//
// Inputs (environment): LK_ISSUER, LK_EMAIL, LK_PASSWORD, LK_NOW (the server's clock, Unix
// seconds), SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { createHmac } from 'node:crypto';
import { need, run, Shots, log } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER'));

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(key, unix) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[19] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1000000).padStart(6, '0');
}

run('mfa_enrol', async ({ page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  log('sign in with the password');
  await page.goto(new URL('/login', issuer).href);
  await page.locator('#username').fill(need('LK_EMAIL'));
  await page.locator('#password').fill(need('LK_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  await shots.both(page, 'account-without-second-factor');
  log('add an authenticator app');
  await page.getByRole('button', { name: 'Add an authenticator app' }).click();
  const key = page.locator('code.key');
  await key.waitFor({ state: 'visible' });
  if ((await page.locator('.qr svg').count()) !== 1) throw new Error('no QR code');
  await shots.both(page, 'add-authenticator-app');
  const code = totp(base32(await key.innerText()), Number(need('LK_NOW')) + 30);
  await page.locator('#code').fill(code);
  await page.getByRole('button', { name: 'Turn on' }).click();
  const codes = page.locator('ol.codes code');
  await codes.first().waitFor({ state: 'visible' });
  const recovery = await codes.allInnerTexts();
  await shots.both(page, 'recovery-codes');
  await page.getByRole('link', { name: 'I have saved them' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  const account = await page.locator('main').innerText();
  await shots.both(page, 'account-with-second-factor');
  return { recovery_codes: recovery, account_text: account, screenshots: shots.taken };
});
