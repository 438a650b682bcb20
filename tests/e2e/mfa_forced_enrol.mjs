// Enrolment forced by an MFA policy, in Chromium (issue 15): the password on the hosted
// sign-in page leads, for a user the policy covers who has no second factor, to "Set up
// two-step sign-in" (QR code, key, "Set up later" within the grace period); the code computed
// from the key the way an app does (RFC 6238, written here from the RFC) turns it on, the
// recovery codes are shown once, and "I have saved them" opens the account page.
//
// Inputs (environment): LK_ISSUER, LK_EMAIL, LK_PASSWORD, LK_NOW (the server's clock, Unix
// seconds), SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { createHmac } from 'node:crypto';
import { need, run, Shots, log } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER'));

function fromBase32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let acc = 0;
  let bits = 0;
  const out = [];
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function code(key, unix) {
  const step = Buffer.alloc(8);
  step.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const mac = createHmac('sha1', key).update(step).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = mac.readUInt32BE(at) & 0x7fffffff;
  return String(n % 1000000).padStart(6, '0');
}

run('mfa_forced_enrol', async ({ page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  log('the password, then the enrolment page');
  await page.goto(new URL('/login', issuer).href);
  await page.locator('#username').fill(need('LK_EMAIL'));
  await page.locator('#password').fill(need('LK_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  const key = page.locator('code.key');
  await key.waitFor({ state: 'visible' });
  if ((await page.locator('.qr svg').count()) !== 1) throw new Error('no QR code');
  const later = await page.getByRole('button', { name: 'Set up later' }).count();
  const heading = await page.locator('h1').innerText();
  await shots.both(page, 'forced-enrolment');
  log('turn it on');
  await page.locator('#otp').fill(code(fromBase32(await key.innerText()), Number(need('LK_NOW')) + 30));
  await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  const codes = page.locator('ol.codes code');
  await codes.first().waitFor({ state: 'visible' });
  const recovery = await codes.allInnerTexts();
  await shots.both(page, 'forced-enrolment-recovery-codes');
  await page.getByRole('button', { name: /I have saved them/ }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  const account = await page.locator('main').innerText();
  return {
    heading,
    later_offered: later === 1,
    recovery_codes: recovery,
    account_text: account,
    screenshots: shots.taken,
  };
});
