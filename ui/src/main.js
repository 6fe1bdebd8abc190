// The web UI of flowvault (docs/ui.md): three pages over the public REST
// API, chosen by the URL's hash, which also holds each page's state.

import './style.css';
import { current } from './router.js';
import { renderFlows } from './flows.js';
import { renderPackets } from './packets.js';
import { renderDashboard } from './dashboard.js';

const PAGES = { flows: renderFlows, packets: renderPackets, dashboard: renderDashboard };
const TITLES = { flows: 'Flows', packets: 'Packets', dashboard: 'Dashboard' };

const app = document.getElementById('app');
let leave = null;

function route() {
  const { page, params } = current();
  const name = PAGES[page] ? page : 'flows';
  if (typeof leave === 'function') leave();
  leave = PAGES[name](app, params);
  document.title = `${TITLES[name]} · flowvault`;
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.page === name);
  }
}

window.addEventListener('hashchange', route);
route();
