// What the browser tests share: Debian's chromium launched through playwright-core, a check
// that fails with a message, and screenshots at desktop width and at a phone width, at which
// nothing may overflow sideways.
import fs from 'node:fs';
import { chromium } from 'playwright-core';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

// `shot(page, name)` writes `${dir}/${name}-desktop.png` and `${dir}/${name}-${phone}.png`.
export function screenshots(dir, phone) {
  fs.mkdirSync(dir, { recursive: true });
  return async (page, name) => {
    for (const [label, width, height] of [['desktop', 1280, 800], [String(phone), phone, 740]]) {
      await page.setViewportSize({ width, height });
      await page.screenshot({ path: `${dir}/${name}-${label}.png`, fullPage: true });
      if (width === phone) {
        const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
        check(scroll <= phone, `${name}: the page is ${scroll} px wide at ${phone} px`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  };
}
