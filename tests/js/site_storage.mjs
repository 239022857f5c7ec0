// Two tenants' sites in headless Chromium: what site A stores, can site B read it?
//
//   node site_storage.mjs <site A url> <site B url>
//
// Prints one JSON object: A's storage after a reload (storage works), B's storage, and where each page ended up.
import { chromium } from 'playwright-core';

const [siteA, siteB] = process.argv.slice(2);
const result = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(siteA);
  result.aText = await page.textContent('body');
  await page.evaluate(() => {
    localStorage.setItem('tenant-a', 'A-SECRET-5e2');
    document.cookie = 'tenant_a=A-COOKIE-5e2; path=/';
  });
  await page.reload();
  result.aStorage = await page.evaluate(() => JSON.stringify(Object.entries(localStorage)) + document.cookie);
  result.aOrigin = await page.evaluate(() => location.origin);
  await page.goto(siteB);
  result.bText = await page.textContent('body');
  result.bStorage = await page.evaluate(() => JSON.stringify(Object.entries(localStorage)) + document.cookie);
  result.bOrigin = await page.evaluate(() => location.origin);
} catch (error) {
  result.error = String(error).slice(0, 800);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
