// Drives the people pages in a real browser (Debian chromium through playwright-core):
// first-run setup, sign-in, invite a person, accept the invitation, change a role, deactivate
// with confirmation. Screenshots at desktop and 360 px go to SCREENSHOT_DIR. Exits non-zero
// with a message on the first failure. Env: BASE_URL, SETUP_LINK, SCREENSHOT_DIR.
import { check, launch, screenshots } from './browser.mjs';

const base = process.env.BASE_URL;
const password = 'correct horse battery staple';
const browser = await launch();
const shot = screenshots(process.env.SCREENSHOT_DIR, 360);

try {
  const admin = await (await browser.newContext()).newPage();
  // Setup.
  await admin.goto(process.env.SETUP_LINK);
  await shot(admin, '01-setup');
  await admin.getByLabel('Username').fill('root');
  await admin.getByLabel('Email (optional)').fill('root@example.com');
  await admin.getByLabel(/^Password/).fill(password);
  await admin.getByRole('button', { name: 'Create admin and sign in' }).click();
  await admin.waitForURL(/\/onboarding/);
  await shot(admin, '02-onboarding');
  await admin.getByRole('button', { name: 'Got it, continue' }).click();
  await admin.waitForURL(/\/people$/);

  // Sign out and in again through the form.
  await admin.getByRole('button', { name: /Sign out/ }).click();
  await admin.waitForURL(/\/login/);
  await admin.getByLabel('Username').fill('root');
  await admin.getByLabel('Password').fill('not the password');
  await admin.getByRole('button', { name: 'Sign in' }).click();
  check(await admin.getByRole('alert').textContent() === 'Unknown username or wrong password.', 'wrong password message');
  await shot(admin, '03-sign-in-error');
  await admin.getByLabel('Password').fill(password);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(/\/people$/);

  // Invite a person.
  await admin.getByRole('link', { name: 'Add a person' }).click();
  await admin.getByLabel('Username').fill('ivy');
  await admin.getByLabel('Email (optional)').fill('ivy@example.com');
  await admin.getByLabel('Role').selectOption('bookkeeper');
  await shot(admin, '04-add-person');
  await admin.getByRole('button', { name: 'Add person' }).click();
  const link = (await admin.locator('#invite-link').textContent()).trim();
  check(link.includes('/invite/'), `no invitation link: ${link}`);
  await shot(admin, '05-invited');

  // Accept the invitation in another browser.
  const ivy = await (await browser.newContext()).newPage();
  await ivy.goto(link);
  await shot(ivy, '06-accept-invite');
  await ivy.getByLabel(/New password/).fill('ivy has a long password');
  await ivy.getByRole('button', { name: 'Set password and sign in' }).click();
  await ivy.waitForURL(/\/onboarding/);
  check((await ivy.locator('h1').textContent()).includes('ivy'), 'ivy is welcomed');
  await ivy.getByRole('button', { name: 'Got it, continue' }).click();
  await ivy.waitForURL(/\/account$/);
  await shot(ivy, '07-my-account');

  // Change ivy's role.
  await admin.goto(`${base}/people`);
  await shot(admin, '08-people');
  await admin.getByRole('link', { name: 'ivy' }).click();
  await admin.getByLabel('Role').selectOption('viewer');
  await admin.getByRole('button', { name: 'Change role' }).click();
  await admin.waitForURL(/\/people\/ivy$/);
  check(await admin.getByLabel('Role').inputValue() === 'viewer', 'role changed to viewer');
  await shot(admin, '09-person');

  // Deactivate, confirmed.
  await admin.getByRole('link', { name: 'Deactivate…' }).click();
  await admin.waitForURL(/confirm\/deactivate$/);
  await shot(admin, '10-confirm-deactivate');
  await admin.getByRole('button', { name: 'Yes, deactivate ivy' }).click();
  await admin.waitForURL(/\/people\/ivy$/);
  check((await admin.locator('dl.facts').textContent()).includes('deactivated'), 'ivy shows as deactivated');

  // Ivy's session ended at once.
  await ivy.goto(`${base}/account`);
  await ivy.waitForURL(/\/login\?next=/);
  await shot(ivy, '11-signed-out');
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.error(`browser test failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
