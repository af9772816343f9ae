// Drives the audit page in a real browser (Debian chromium through playwright-core): the
// navigation reaches it, the labelled filter form narrows the list and the filtered view is a
// link, paging keeps the filter, an entry opens on its details, and a bookkeeper sees only
// their own entries. Screenshots at desktop and 375 px go to SCREENSHOT_DIR; at 375 px nothing
// may overflow sideways. Exits non-zero with a message on the first failure.
// Env: BASE_URL, PASSWORD, SCREENSHOT_DIR. The server holds root (admin) with one query call
// in the demo company, and bea (bookkeeper) with 55 entries.
import { check, launch, screenshots } from './browser.mjs';

const base = process.env.BASE_URL;
const password = process.env.PASSWORD;
const browser = await launch();
const shot = screenshots(process.env.SCREENSHOT_DIR, 375);

async function signIn(username) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/login'));
  return page;
}

const entries = (page) => page.locator('details.entry');

try {
  const admin = await signIn('root');
  await admin.goto(`${base}/account`);
  const nav = admin.getByRole('navigation', { name: 'Main' });
  check(await nav.getByRole('link', { name: 'Assistants' }).count() === 1, 'Assistants in the navigation');
  await nav.getByRole('link', { name: 'Audit' }).click();
  await admin.waitForURL(/\/audit$/);
  check(await entries(admin).count() === 50, 'a page holds 50 entries');
  await shot(admin, '01-audit');

  // Filter through the labelled fields; the result is a link.
  await admin.getByLabel('User').fill('root');
  await admin.getByLabel('Company').fill("Craig's Design and Landscaping Services");
  await admin.getByLabel('Action').fill('tool.call');
  await admin.getByLabel('Outcome').selectOption('ok');
  const today = new Date().toISOString().slice(0, 10);
  await admin.getByLabel('Since').fill(today);
  await admin.getByLabel('Until').fill(today);
  await admin.getByRole('button', { name: 'Filter' }).click();
  await admin.waitForURL(/user=root/);
  const filtered = admin.url();
  for (const part of ['company=Craig', 'action=tool.call', 'outcome=ok', `since=${today}`, `until=${today}`]) {
    check(filtered.includes(part), `the filtered view's link has ${part}: ${filtered}`);
  }
  check(await entries(admin).count() === 1, `one call of root's: ${await entries(admin).count()}`);
  const call = entries(admin).first();
  check(/ UTC$/.test((await call.locator('time').textContent()).trim()), 'time as people read it');
  await call.locator('summary').click();
  const facts = await call.locator('dl').textContent();
  check(facts.includes('QuickBooks request id') && facts.includes('Duration') && facts.includes('SELECT * FROM Customer'), `details: ${facts}`);
  check(!facts.includes('QuickBooks request id—'), `a request id is shown: ${facts}`);
  await shot(admin, '02-filtered');
  // The same link in a fresh tab shows the same view.
  const again = await admin.context().newPage();
  await again.goto(filtered);
  check(await entries(again).count() === 1, 'the filtered view is a link');
  check(await again.getByLabel('User').inputValue() === 'root', 'the form keeps its values');

  // Paging keeps the filter.
  await admin.goto(`${base}/audit?user=bea`);
  check(await entries(admin).count() === 50, 'first page of bea');
  await admin.getByRole('link', { name: 'Older entries' }).click();
  await admin.waitForURL(/before=/);
  check(admin.url().includes('user=bea'), `paging keeps the filter: ${admin.url()}`);
  check(await entries(admin).count() === 5, 'the rest of bea');
  check(await admin.getByRole('link', { name: 'Older entries' }).count() === 0, 'no older page');
  await admin.getByRole('link', { name: 'Newest entries' }).click();
  check(await entries(admin).count() === 50, 'back to the newest');

  // A bookkeeper: own entries only, no user field.
  const bea = await signIn('bea');
  await bea.goto(`${base}/audit`);
  check(await bea.getByLabel('User').count() === 0, 'no user field for a bookkeeper');
  check(await entries(bea).count() === 50, 'bea sees her entries');
  const names = await bea.locator('details.entry summary strong').allTextContents();
  check(names.every((n) => n === 'bea'), `only bea's entries: ${names}`);
  await shot(bea, '03-bookkeeper');
  console.log('audit page: ok');
} catch (e) {
  console.error(e.stack || String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
