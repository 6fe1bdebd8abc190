// Packet query: a BPF filter and a time range -> the matching packets as
// a capture file, GET /api/v1/packets (byte for byte `flowvault extract
// --bpf EXPR --since --until`). The query is checked first (the API
// answers a bad filter or time before any packet is read) so its error
// shows here instead of landing in the downloaded file.

import { apiPath, apiUrl, checkDownload } from './api.js';
import { href } from './router.js';
import { readRange, rangeControls, rangeToApi, rangeToParams } from './timerange.js';
import { h, copyText, shq } from './util.js';

function readState(params) {
  return {
    bpf: params.get('bpf') || '',
    ...readRange(params, '1h'),
    format: params.get('format') === 'pcapng' ? 'pcapng' : 'pcap',
  };
}

function queryPath(s) {
  return apiPath('api/v1/packets', {
    bpf: s.bpf,
    ...rangeToApi(s),
    format: s.format === 'pcap' ? '' : s.format,
  });
}

export function renderPackets(root, params) {
  let s = readState(params);
  const bpf = h('input#bpf', {
    name: 'bpf',
    value: s.bpf,
    placeholder: 'BPF filter (tcpdump syntax), e.g. host 10.0.0.9 and tcp port 443; empty: every packet',
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-label': 'BPF filter',
  });
  const range = rangeControls(s);
  const format = h(
    'select',
    { name: 'format', 'aria-label': 'file format' },
    ['pcap', 'pcapng'].map((f) => h('option', { value: f, selected: f === s.format }, f)),
  );
  const status = h('div#packets-status', { role: 'status' });
  const errBox = h('div#packets-error.error', { role: 'alert', hidden: true });
  const curl = h('code#packets-curl');
  const copied = h('span.muted');

  const read = () => ({ bpf: bpf.value.trim(), ...range.value(), format: format.value });
  const update = () => {
    s = read();
    curl.textContent = `curl -o packets.${s.format} ${shq(apiUrl(queryPath(s)))}`;
  };

  const form = h(
    'form.query',
    {
      oninput: update,
      onchange: update,
      onsubmit: async (e) => {
        e.preventDefault();
        update();
        // The URL keeps the query (a bookmark fills the form again), without
        // a new render: the form stays as it is.
        history.replaceState(null, '', href('packets', { bpf: s.bpf, ...rangeToParams(s), format: s.format === 'pcap' ? '' : s.format }));
        download();
      },
    },
    bpf,
    range.el,
    format,
    h('button', { type: 'submit' }, 'Download pcap'),
  );

  root.replaceChildren(
    h(
      'section.page',
      {},
      h('h1', {}, 'Packets'),
      h('p.muted', {}, 'Every stored packet that matches a BPF filter in a time range, as one capture file in time order.'),
      form,
      errBox,
      status,
      h('div.curl', {}, curl, h('button', { type: 'button', onclick: async () => {
        copied.textContent = (await copyText(curl.textContent)) ? ' copied' : ' copy failed: select the text';
      } }, 'Copy'), copied),
    ),
  );
  update();

  async function download() {
    const path = queryPath(s);
    errBox.hidden = true;
    status.textContent = 'checking the query…';
    try {
      await checkDownload(path);
    } catch (e) {
      status.textContent = '';
      errBox.hidden = false;
      errBox.replaceChildren(h('b', {}, `${e.error || 'error'}: `), e.detail || e.message);
      return;
    }
    status.textContent = 'downloading (the browser saves the file)';
    const a = h('a', { href: path, download: '' });
    document.body.append(a);
    a.click();
    a.remove();
  }
}
