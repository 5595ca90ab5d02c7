// Library: the readers' and librarians' page. Vanilla ES module, no build, no external resources.
// Tokens live in this module's memory only (never localStorage or cookies): a reload signs out.

// ---------------------------------------------------------------- session and API

const session = { access: null, refresh: null, user: null };
let refreshing = null;

class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}

function decodeJwt(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = part + '='.repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

function setTokens(pair) {
  session.access = pair.accessToken;
  session.refresh = pair.refreshToken;
  const claims = decodeJwt(pair.accessToken);
  const roles = [].concat(claims.role ?? []);
  const role = roles.includes('admin') ? 'admin' : roles.includes('librarian') ? 'librarian' : (roles[0] || 'member');
  session.user = { id: claims.sub, name: claims.name || claims.email, email: claims.email, role };
  renderHeader();
}

function clearSession() {
  session.access = null;
  session.refresh = null;
  session.user = null;
  renderHeader();
}

const isStaff = () => session.user && (session.user.role === 'librarian' || session.user.role === 'admin');

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

async function refreshOnce() {
  // One refresh at a time: a refresh token works once, and presenting a spent one revokes the log-in.
  if (!refreshing) {
    const token = session.refresh;
    refreshing = (async () => {
      try {
        const r = await fetch('/api/auth/refresh', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Idempotency-Key': uuid() },
          body: JSON.stringify({ refreshToken: token }),
        });
        if (!r.ok) return false;
        setTokens(await r.json());
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => { refreshing = null; }, 0);
      }
    })();
  }
  return refreshing;
}

const isWrite = (method) => method !== 'GET' && method !== 'HEAD';

/**
 * Calls the API; answers { data, headers, status } or throws ApiError (problem details). Every
 * write carries an Idempotency-Key: a fresh one per call (one user action) unless the caller gives
 * one, the same on this call's own retry after a token refresh. Where the service honours it (the
 * lending writes), the gateway may send the write again to another replica when one dies.
 */
async function api(method, path, { body, headers = {}, auth = true, retried = false } = {}) {
  if (isWrite(method) && !headers['Idempotency-Key']) headers = { ...headers, 'Idempotency-Key': uuid() };
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (auth && session.access) h.Authorization = `Bearer ${session.access}`;
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'The library could not be reached. Check the connection and try again.' });
  }
  if (r.status === 401 && auth && session.refresh && !retried) {
    if (await refreshOnce()) return api(method, path, { body, headers, auth, retried: true });
    clearSession();
    flash('Your session ended. Please log in again.', 'error');
  }
  const type = r.headers.get('Content-Type') || '';
  const data = r.status === 204 ? null : type.includes('json') ? await r.json().catch(() => null) : await r.text().catch(() => null);
  if (!r.ok) {
    const problem = data && typeof data === 'object' ? data : { title: r.statusText || `HTTP ${r.status}` };
    throw new ApiError(r.status, problem, r.headers.get('Retry-After'));
  }
  return { data, headers: r.headers, status: r.status };
}

const qs = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
};

// ---------------------------------------------------------------- DOM helpers (no innerHTML with data)

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const main = () => document.getElementById('main');

/** replaceChildren, skipping null, undefined and false (optional parts). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function view(title, ...children) {
  const heading = h('h1', { tabindex: '-1', testid: 'view-title' }, title);
  fill(main(), heading, ...children);
  document.title = `${title} · Library`;
  heading.focus({ preventScroll: false });
}

let routeNo = 0;
let flashedAt = -1;

function flash(text, kind = 'info') {
  flashedAt = routeNo;
  const box = document.getElementById('messages');
  const p = h('p', { class: `msg ${kind}`, testid: 'message' }, text);
  fill(box, p);
}

const fmtDate = (s) => (s ? new Date(s).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' }) : '');
const fmtDateTime = (s) => (s ? new Date(s).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '');

/** A labelled field; `name` is the API's field name, so problem details' `errors` land beside it. */
function field(label, name, attrs = {}, kind = 'input') {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const errId = `${id}-err`;
  let control;
  if (kind === 'textarea') control = h('textarea', { id, name, 'aria-describedby': errId, ...attrs });
  else if (kind === 'select') {
    const { options = [], ...rest } = attrs;
    control = h('select', { id, name, 'aria-describedby': errId, ...rest },
      options.map(([value, text]) => h('option', { value }, text)));
  } else control = h('input', { id, name, type: 'text', 'aria-describedby': errId, ...attrs });
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    h('p', { class: 'field-error', id: errId, testid: `field-error-${name}`, hidden: true }));
}

/** The error box of a form, shown near it, with the problem's title, detail and field errors. */
function errorBox() {
  return h('div', { class: 'form-error', role: 'alert', testid: 'form-error', hidden: true });
}

function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) { p.hidden = true; p.textContent = ''; }
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  const box = form.querySelector('.form-error');
  if (box) { box.hidden = true; fill(box); }
}

function describeProblem(err) {
  if (!(err instanceof ApiError)) return { title: 'Something went wrong', detail: String(err?.message || err) };
  const p = err.problem;
  if (err.status === 429) {
    const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : ' Try again in a moment.';
    return { title: 'Slow down', detail: `Too many requests.${wait}` };
  }
  if (err.status === 403 && Array.isArray(p.blocks) && p.blocks.length) {
    // A block refusal names every block, so the reader knows what to settle first.
    const why = p.blocks.map((b) => b.reason || b.source).filter(Boolean).join('; ');
    return { title: p.title || 'Blocked', detail: [p.detail, why && !String(p.detail || '').includes(why) ? why : ''].filter(Boolean).join(' ') };
  }
  if (err.status === 403 && !p.detail) return { title: 'Not allowed', detail: 'Your role does not allow this.' };
  if (err.status === 401 && !p.detail) return { title: 'Please log in', detail: 'This needs a signed-in user.' };
  if (err.status === 404 && !p.detail) return { title: 'Not found', detail: 'It does not exist (any more).' };
  return { title: p.title || `Error ${err.status}`, detail: p.detail || '' };
}

/** Shows an API error in the form's box, and each field error under its field. */
function showError(container, err) {
  const { title, detail } = describeProblem(err);
  const errors = err instanceof ApiError && err.problem.errors && typeof err.problem.errors === 'object' ? err.problem.errors : {};
  const box = container.querySelector('.form-error');
  const unplaced = [];
  for (const [name, messages] of Object.entries(errors)) {
    const text = [].concat(messages).join(' ');
    const control = container.querySelector(`[name="${CSS.escape(name)}"]`)
      || container.querySelector(`[name="${CSS.escape(name.charAt(0).toLowerCase() + name.slice(1))}"]`);
    const slot = control && document.getElementById(control.getAttribute('aria-describedby'));
    if (slot) {
      slot.textContent = text;
      slot.hidden = false;
      control.setAttribute('aria-invalid', 'true');
    } else unplaced.push(`${name}: ${text}`);
  }
  if (box) {
    // Errors shown beside their fields are not repeated here; the rest are listed.
    fill(box,
      h('strong', { testid: 'error-title' }, title),
      detail ? h('p', { testid: 'error-detail' }, detail) : null,
      Object.keys(errors).length > unplaced.length ? h('p', {}, 'Please correct the marked fields.') : null,
      unplaced.length ? h('ul', { testid: 'error-list' }, unplaced.map((t) => h('li', {}, t))) : null);
    box.hidden = false;
  } else {
    flash([title, detail, ...unplaced].filter(Boolean).join(' — '), 'error');
  }
}

/** Runs an action from a button or form: disables it meanwhile, shows errors in `container`. */
async function busy(control, container, action) {
  if (control.disabled) return;
  control.disabled = true;
  control.setAttribute('aria-busy', 'true');
  if (container) clearErrors(container);
  try {
    await action();
  } catch (err) {
    if (container) showError(container, err);
    else { const { title, detail } = describeProblem(err); flash(`${title}: ${detail}`, 'error'); }
  } finally {
    control.disabled = false;
    control.removeAttribute('aria-busy');
  }
}

function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.type === 'submit' || el.type === 'button' || el.type === 'checkbox') continue;
    out[el.name] = el.value.trim();
  }
  return out;
}

const intOrNull = (s) => (s === '' || s === undefined ? null : Number.parseInt(s, 10));
const textOrNull = (s) => (s === '' || s === undefined ? null : s);

function pager(page, pageSize, total, go, prefix = 'pager') {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  return h('nav', { class: 'pager', 'aria-label': 'Pages', testid: prefix },
    h('button', { type: 'button', testid: `${prefix}-prev`, disabled: page <= 1, onclick: () => go(page - 1) }, '‹ Previous'),
    h('span', { testid: `${prefix}-status` }, `Page ${page} of ${pages}`),
    h('button', { type: 'button', testid: `${prefix}-next`, disabled: page >= pages, onclick: () => go(page + 1) }, 'Next ›'));
}

// ---------------------------------------------------------------- header

function renderHeader() {
  const signedIn = !!session.user;
  for (const el of document.querySelectorAll('.signed-in')) el.hidden = !signedIn;
  for (const el of document.querySelectorAll('.signed-out')) el.hidden = signedIn;
  for (const el of document.querySelectorAll('.staff')) el.hidden = !isStaff();
  document.getElementById('whoami').textContent = signedIn ? `${session.user.name} (${session.user.role})` : '';
}

async function logout() {
  const refresh = session.refresh;
  if (refresh) {
    try { await api('POST', '/api/auth/logout', { body: { refreshToken: refresh } }); } catch { /* signed out locally anyway */ }
  }
  clearSession();
  flash('You are logged out.');
  location.hash = '#/search';
}

// ---------------------------------------------------------------- books: shared bits

function availabilityText(b) {
  if (b.totalCopies === 0) return 'No copies owned';
  if (b.availableCopies > 0) return `${b.availableCopies} of ${b.totalCopies} on the shelf`;
  return b.nextAvailableAt ? `All ${b.totalCopies} out · expected back ${fmtDate(b.nextAvailableAt)}` : `All ${b.totalCopies} out`;
}

function bookCard(b) {
  return h('li', { class: 'card', testid: 'book-card', 'data-book-id': b.id },
    h('h3', {}, h('a', { href: `#/book/${b.id}`, testid: 'book-link' }, b.title)),
    b.subtitle ? h('p', { class: 'sub' }, b.subtitle) : null,
    h('p', { class: 'meta' }, [b.authors.map((a) => a.name).join(', '), b.publisher, b.publishedYear].filter(Boolean).join(' · ')),
    h('p', { class: `avail ${b.availableCopies > 0 ? 'yes' : 'no'}`, testid: 'book-card-availability' }, availabilityText(b)));
}

function bookList(books, testid) {
  return books.length
    ? h('ul', { class: 'cards', testid }, books.map(bookCard))
    : h('p', { class: 'empty', testid: `${testid}-empty` }, 'Nothing here yet.');
}

// ---------------------------------------------------------------- search

const FILTERS = ['search', 'category', 'publisher', 'language', 'available', 'sort'];

async function searchView(params) {
  const q = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const pageSize = 20;
  const go = (changes) => {
    const next = { ...q, page: 1, ...changes };
    if (next.page === 1) delete next.page;
    location.hash = `#/search${qs(next)}`;
  };

  const searchField = field('Search title, author, ISBN…', 'search', { type: 'search', value: q.search, testid: 'search-input', autocomplete: 'off' });
  const sortField = field('Sort by', 'sort', {
    testid: 'search-sort',
    options: [['', 'Best match / title'], ['relevance', 'Relevance'], ['title', 'Title'], ['newest', 'Newest'], ['popular', 'Popular']],
  }, 'select');
  sortField.querySelector('select').value = q.sort;
  const availableBox = h('input', { type: 'checkbox', id: 'f-available', name: 'available', testid: 'search-available', checked: q.available === 'true' });
  const form = h('form', { class: 'search', role: 'search', testid: 'search-form' },
    searchField, sortField,
    h('div', { class: 'check' }, availableBox, h('label', { for: 'f-available' }, 'Only on the shelf now')),
    h('button', { type: 'submit', class: 'primary', testid: 'search-submit' }, 'Search'),
    errorBox());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = formValues(form);
    go({ search: v.search, sort: v.sort, available: availableBox.checked ? 'true' : '' });
  });

  const chips = h('div', { class: 'chips', testid: 'active-filters' },
    ['category', 'publisher', 'language'].filter((k) => q[k]).map((k) =>
      h('button', { type: 'button', class: 'chip on', testid: `active-filter-${k}`, 'aria-label': `Remove filter ${k}: ${q[k]}`, onclick: () => go({ [k]: '' }) },
        `${k}: ${q[k]} ✕`)));

  const results = h('section', { 'aria-labelledby': 'results-h', class: 'results' }, h('h2', { id: 'results-h' }, 'Results'), h('p', {}, 'Searching…'));
  const facets = h('aside', { class: 'facets', 'aria-label': 'Filters', testid: 'facets' });
  const layout = h('div', { class: 'search-layout' }, facets, results);
  const extra = h('div', {});
  view('Catalog', form, chips, layout, extra);

  const filter = { search: q.search, category: q.category, publisher: q.publisher, language: q.language, available: q.available };
  try {
    const [list, fac] = await Promise.all([
      api('GET', `/api/books${qs({ ...filter, sort: q.sort, page, pageSize })}`),
      api('GET', `/api/books/facets${qs(filter)}`).catch(() => null),
    ]);
    const { items, totalCount } = list.data;
    fill(results,
      h('h2', { id: 'results-h' }, 'Results'),
      h('p', { testid: 'result-count', class: 'count' }, `${totalCount} ${totalCount === 1 ? 'title' : 'titles'}`),
      bookList(items, 'search-results'),
      totalCount > pageSize ? pager(page, pageSize, totalCount, (p) => go({ page: p })) : null);
    if (fac) {
      const wide = window.matchMedia('(min-width: 800px)').matches;
      const group = (title, key, entries) => entries.length
        // On a phone only the category facet starts open, so the results stay near the top.
        ? h('details', { open: key === 'category' || wide || !!q[key], class: 'facet', testid: `facet-${key}` },
          h('summary', {}, title),
          h('ul', {}, entries.slice(0, 15).map((e) => h('li', {},
            h('button', {
              type: 'button', class: `chip${q[key] && q[key].toLowerCase() === e.value.toLowerCase() ? ' on' : ''}`,
              testid: `facet-${key}-option`, 'data-value': e.value, 'aria-pressed': String(q[key] === e.value),
              onclick: () => go({ [key]: q[key] === e.value ? '' : e.value }),
            }, `${e.label} (${e.count})`)))))
        : null;
      fill(facets,
        h('h2', { class: 'visually-hidden' }, 'Filters'),
        group('Category', 'category', fac.data.categories.map((c) => ({ value: c.name, label: c.name, count: c.count }))),
        group('Publisher', 'publisher', fac.data.publishers.map((p) => ({ value: p.name, label: p.name, count: p.count }))),
        group('Language', 'language', fac.data.languages.map((l) => ({ value: l.code, label: l.code, count: l.count }))));
    }
  } catch (err) {
    fill(results, h('h2', { id: 'results-h' }, 'Results'));
    showError(form, err);
  }

  if (session.user && !q.search && !q.category && !q.publisher && !q.language && page === 1) {
    recommendedForYou(extra);
  }
}

async function recommendedForYou(container) {
  try {
    const { data } = await api('GET', '/api/recommendations?limit=6');
    if (data.length) fill(container, h('section', { 'aria-labelledby': 'rfy-h', testid: 'recommended-for-you' }, h('h2', { id: 'rfy-h' }, 'Recommended for you'), bookList(data, 'recommended-list')));
  } catch { /* recommendations are a nicety */ }
}

// ---------------------------------------------------------------- one book

async function bookView(id) {
  view('Book', h('p', {}, 'Loading…'));
  let book;
  try {
    ({ data: book } = await api('GET', `/api/books/${encodeURIComponent(id)}`));
  } catch (err) {
    view('Book not found', h('p', { testid: 'book-missing' }, describeProblem(err).detail), h('a', { href: '#/search' }, 'Back to the catalog'));
    return;
  }
  const avail = h('p', { class: `avail big ${book.availableCopies > 0 ? 'yes' : 'no'}`, testid: 'book-availability', 'data-available': String(book.availableCopies), 'data-total': String(book.totalCopies) }, availabilityText(book));
  const actions = h('section', { class: 'actions', 'aria-label': 'Borrow' });
  const recs = h('section', { 'aria-labelledby': 'recs-h', testid: 'recommendations' }, h('h2', { id: 'recs-h' }, 'You may also like'), h('p', {}, 'Loading…'));
  const copies = h('section', { 'aria-labelledby': 'copies-h', testid: 'copies', class: 'copies' });

  const dl = h('dl', { class: 'facts' },
    [['Authors', book.authors.map((a) => a.name).join(', ')],
      ['Publisher', book.publisher], ['Published', book.publishedYear], ['Language', book.language],
      ['Pages', book.pageCount], ['ISBN', book.isbn]]
      .filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => [h('dt', {}, k), h('dd', { testid: `book-${k.toLowerCase()}` }, String(v))]));
  const cats = book.categories.length
    ? h('p', { class: 'chips' }, book.categories.map((c) => h('a', { class: 'chip', href: `#/search${qs({ category: c.name })}` }, c.name)))
    : null;

  view(book.title,
    book.subtitle ? h('p', { class: 'sub', testid: 'book-subtitle' }, book.subtitle) : null,
    avail, actions, dl, cats,
    book.description ? h('p', { class: 'desc', testid: 'book-description' }, book.description) : null,
    isStaff() ? h('p', {}, h('a', { href: `#/admin/book/${book.id}`, testid: 'book-edit-link', class: 'button' }, 'Edit this book')) : null,
    copies, recs);
  main().querySelector('h1').dataset.testid = 'book-title';

  renderBorrow(actions, book);
  renderCopies(copies, book);
  try {
    const { data } = await api('GET', `/api/books/${book.id}/recommendations?limit=6`);
    fill(recs, h('h2', { id: 'recs-h' }, 'You may also like'), bookList(data, 'recommendation-list'));
  } catch {
    fill(recs);
  }
}

function renderBorrow(actions, book) {
  if (!session.user) {
    fill(actions, h('p', {}, h('a', { href: '#/login', testid: 'login-to-borrow' }, 'Log in'), ' to borrow or hold this book.'));
    return;
  }
  const days = field('Days', 'days', {
    testid: 'borrow-days',
    options: Array.from({ length: 30 }, (_, i) => [String(i + 1), `${i + 1} ${i ? 'days' : 'day'}`]),
  }, 'select');
  days.querySelector('select').value = '14';
  const borrow = h('button', { type: 'submit', class: 'primary', testid: 'borrow-button' }, 'Borrow');
  const form = h('form', { class: 'inline', testid: 'borrow-form' }, days, borrow, errorBox());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(borrow, form, async () => {
      const { data: loan } = await api('POST', '/api/loans', {
        body: { bookId: book.id, days: Number.parseInt(form.elements.days.value, 10) },
        headers: { 'Idempotency-Key': uuid() },
      });
      flash(`Borrowed “${loan.title}” until ${fmtDate(loan.dueAt)}.`, 'ok');
      fill(actions, h('p', { class: 'ok', testid: 'borrowed' }, `You have it until ${fmtDate(loan.dueAt)}. `, h('a', { href: '#/loans', testid: 'go-to-loans' }, 'See my loans')));
    });
  });
  const hold = h('button', { type: 'button', testid: 'hold-button' }, 'Place hold');
  hold.addEventListener('click', () => busy(hold, form, async () => {
    const { data } = await api('POST', '/api/holds', { body: { bookId: book.id }, headers: { 'Idempotency-Key': uuid() } });
    flash(`Hold placed${data.position ? `: you are number ${data.position} in the queue` : ''}.`, 'ok');
    hold.replaceWith(h('span', { class: 'ok', testid: 'hold-placed' }, 'On hold for you.'));
  }));
  fill(actions, form, book.availableCopies > 0 ? null : h('div', { class: 'hold' }, h('p', {}, 'Nothing on the shelf right now.'), hold));
}

// ---------------------------------------------------------------- auth

function loginView() {
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'stack', testid: 'login-form', novalidate: true },
    field('Email', 'email', { type: 'email', autocomplete: 'username', required: true, testid: 'login-email' }),
    field('Password', 'password', { type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' }),
    errorBox(), submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const v = formValues(form);
      await login(v.email, form.elements.password.value);
      flash(`Welcome, ${session.user.name}.`, 'ok');
      location.hash = '#/search';
    });
  });
  view('Log in', form, h('p', {}, 'New here? ', h('a', { href: '#/register' }, 'Register')));
}

async function login(email, password) {
  const { data } = await api('POST', '/api/auth/login', { body: { email, password }, auth: false });
  setTokens(data);
}

function registerView() {
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'register-submit' }, 'Register');
  const form = h('form', { class: 'stack', testid: 'register-form', novalidate: true },
    field('Email', 'email', { type: 'email', autocomplete: 'email', required: true, testid: 'register-email' }),
    field('First name', 'firstName', { autocomplete: 'given-name', required: true, testid: 'register-first-name' }),
    field('Last name', 'lastName', { autocomplete: 'family-name', required: true, testid: 'register-last-name' }),
    field('Password (8 characters or more)', 'password', { type: 'password', autocomplete: 'new-password', required: true, testid: 'register-password' }),
    errorBox(), submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const v = formValues(form);
      const password = form.elements.password.value;
      await api('POST', '/api/auth/register', { body: { email: v.email, firstName: v.firstName, lastName: v.lastName, password }, auth: false });
      await login(v.email, password);
      flash(`Welcome, ${session.user.name}. You can borrow books now.`, 'ok');
      location.hash = '#/search';
    });
  });
  view('Register', form, h('p', {}, 'Already registered? ', h('a', { href: '#/login' }, 'Log in')));
}

function needLogin() {
  view('Please log in', h('p', { testid: 'need-login' }, 'This page is for signed-in readers. ', h('a', { href: '#/login' }, 'Log in'), ' or ', h('a', { href: '#/register' }, 'register'), '.'));
}

// ---------------------------------------------------------------- my loans and holds

async function loansView(params) {
  if (!session.user) return needLogin();
  const status = params.get('status') || '';
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const statusField = field('Show', 'status', {
    testid: 'loans-status',
    options: [['', 'All loans'], ['active', 'Active'], ['overdue', 'Overdue'], ['returned', 'Returned']],
  }, 'select');
  const select = statusField.querySelector('select');
  select.value = status;
  select.addEventListener('change', () => { location.hash = `#/loans${qs({ status: select.value })}`; });
  const loansBody = h('div', { class: 'list-body' }, h('p', {}, 'Loading…'));
  const holdsBody = h('div', { class: 'list-body' }, h('p', {}, 'Loading…'));
  const loans = h('section', { 'aria-labelledby': 'loans-h' }, h('h2', { id: 'loans-h' }, 'Loans'), statusField, errorBox(), loansBody);
  const holds = h('section', { 'aria-labelledby': 'holds-h' }, h('h2', { id: 'holds-h' }, 'Holds'), errorBox(), holdsBody);
  const recs = h('div', {});
  view('My loans', loans, holds, recs);

  const loadLoans = async () => {
    try {
      const { data } = await api('GET', `/api/loans${qs({ userId: session.user.id, status, page, pageSize: 20 })}`);
      fill(loansBody,
        data.items.length
          ? h('ul', { class: 'rows', testid: 'loans-list' }, data.items.map((l) => loanRow(l, loans, loadLoans)))
          : h('p', { class: 'empty', testid: 'loans-empty' }, 'No loans.'),
        data.totalCount > 20 ? pager(page, 20, data.totalCount, (p) => { location.hash = `#/loans${qs({ status, page: p })}`; }, 'loans-pager') : null);
    } catch (err) {
      fill(loansBody);
      showError(loans, err);
    }
  };
  const loadHolds = async () => {
    try {
      const { data } = await api('GET', `/api/holds${qs({ userId: session.user.id, pageSize: 50 })}`);
      fill(holdsBody, data.items.length
        ? h('ul', { class: 'rows', testid: 'holds-list' }, data.items.map((x) => holdRow(x, holds, loadHolds)))
        : h('p', { class: 'empty', testid: 'holds-empty' }, 'No holds.'));
    } catch (err) {
      fill(holdsBody);
      showError(holds, err);
    }
  };
  await Promise.all([loadLoans(), loadHolds(), recommendedForYou(recs)]);
}

function loanRow(l, section, reload) {
  const open = !l.returnedAt;
  const ret = h('button', { type: 'button', testid: 'loan-return' }, 'Return');
  const renew = h('button', { type: 'button', testid: 'loan-renew' }, 'Renew');
  ret.addEventListener('click', () => busy(ret, section, async () => {
    await api('POST', `/api/loans/${l.id}/return`);
    flash(`Returned “${l.title}”. Thank you!`, 'ok');
    await reload();
  }));
  renew.addEventListener('click', () => busy(renew, section, async () => {
    const { data } = await api('POST', `/api/loans/${l.id}/renew`);
    flash(`Renewed “${l.title}” until ${fmtDate(data.dueAt)}.`, 'ok');
    await reload();
  }));
  return h('li', { class: `row status-${l.status}`, testid: 'loan-row', 'data-loan-id': l.id, 'data-book-id': l.bookId, 'data-status': l.status, 'data-due-at': l.dueAt },
    h('div', {},
      h('a', { href: `#/book/${l.bookId}`, testid: 'loan-title' }, l.title),
      h('p', { class: 'meta' },
        h('span', { class: `badge ${l.status}`, testid: 'loan-status' }, l.status),
        ` Borrowed ${fmtDate(l.borrowedAt)} · `,
        open ? h('span', { testid: 'loan-due' }, `due ${fmtDate(l.dueAt)}`) : `returned ${fmtDate(l.returnedAt)}`,
        l.renewals ? ` · renewed ${l.renewals}×` : '')),
    open ? h('div', { class: 'buttons' }, renew, ret) : null);
}

function holdRow(x, section, reload) {
  const live = x.status === 'waiting' || x.status === 'ready';
  const cancel = h('button', { type: 'button', testid: 'hold-cancel' }, 'Cancel');
  cancel.addEventListener('click', () => busy(cancel, section, async () => {
    await api('DELETE', `/api/holds/${x.id}`);
    flash(`Hold on “${x.title}” cancelled.`, 'ok');
    await reload();
  }));
  const where = x.status === 'ready'
    ? `ready for you until ${fmtDate(x.readyUntil)}`
    : x.status === 'waiting' && x.position ? `number ${x.position} in the queue` : '';
  return h('li', { class: 'row', testid: 'hold-row', 'data-hold-id': x.id, 'data-status': x.status },
    h('div', {},
      h('a', { href: `#/book/${x.bookId}` }, x.title || 'Book'),
      h('p', { class: 'meta' }, h('span', { class: `badge ${x.status}`, testid: 'hold-status' }, x.status), where ? ` ${where}` : '')),
    live ? h('div', { class: 'buttons' }, cancel) : null);
}

// ---------------------------------------------------------------- librarian screens

const ADMIN_TABS = [
  ['desk', 'Desk'], ['books', 'Books'], ['authors', 'Authors'], ['categories', 'Categories'],
  ['readers', 'Readers'], ['borrowers', 'Borrowers'], ['unavailable', 'Unavailable'], ['reports', 'Reports'],
];
const ADMIN_ONLY_TABS = [['rules', 'Circulation rules'], ['calendar', 'Calendar']];
const isAdmin = () => session.user && session.user.role === 'admin';

function adminFrame(active, title, ...children) {
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Librarian' },
    h('ul', {}, [...ADMIN_TABS, ...(isAdmin() ? ADMIN_ONLY_TABS : [])].map(([key, label]) => h('li', {},
      h('a', { href: `#/admin/${key}`, testid: `admin-tab-${key}`, 'aria-current': key === active ? 'page' : false }, label)))));
  view(title, tabs, ...children);
}

async function adminView(parts, params) {
  if (!session.user) return needLogin();
  if (!isStaff()) return view('Librarians only', h('p', {}, 'This part is for librarians.'));
  const [tab = 'books', id] = parts;
  switch (tab) {
    case 'authors': return authorsView(params);
    case 'categories': return categoriesView(params);
    case 'readers': return readersView(params);
    case 'borrowers': return borrowersView(params);
    case 'unavailable': return unavailableView(params);
    case 'reports': return reportsView(params);
    case 'account': return readerAccountView(id);
    case 'book': return bookFormView(id);
    case 'desk': return deskView(params);
    case 'rules': return isAdmin() ? rulesView() : view('Admins only', h('p', {}, 'Only admins change the circulation rules.'));
    case 'calendar': return isAdmin() ? calendarView() : view('Admins only', h('p', {}, 'Only admins change the calendar.'));
    default: return adminBooksView(params);
  }
}

async function adminBooksView(params) {
  const search = params.get('search') || '';
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const input = field('Find a book', 'search', { type: 'search', value: search, testid: 'admin-book-search' });
  const form = h('form', { class: 'inline' }, input, h('button', { type: 'submit' }, 'Find'), errorBox());
  form.addEventListener('submit', (e) => { e.preventDefault(); location.hash = `#/admin/books${qs({ search: form.elements.search.value.trim() })}`; });
  const list = h('div', {}, h('p', {}, 'Loading…'));
  adminFrame('books', 'Books', h('p', {}, h('a', { href: '#/admin/book/new', class: 'button primary', testid: 'admin-add-book' }, 'Add a book')), form, list);
  try {
    const { data } = await api('GET', `/api/books${qs({ search, page, pageSize: 20 })}`);
    fill(list,
      h('ul', { class: 'rows', testid: 'admin-book-list' }, data.items.map((b) => h('li', { class: 'row', 'data-book-id': b.id },
        h('div', {}, h('a', { href: `#/book/${b.id}` }, b.title), h('p', { class: 'meta' }, `${b.isbn} · ${availabilityText(b)}`)),
        h('div', { class: 'buttons' }, h('a', { class: 'button', href: `#/admin/book/${b.id}`, testid: 'admin-edit-book' }, 'Edit'))))),
      data.totalCount > 20 ? pager(page, 20, data.totalCount, (p) => { location.hash = `#/admin/books${qs({ search, page: p })}`; }) : null);
  } catch (err) {
    fill(list);
    showError(form, err);
  }
}

async function fetchAll(path) {
  const items = [];
  for (let page = 1; page <= 20; page++) {
    const { data } = await api('GET', `${path}${path.includes('?') ? '&' : '?'}page=${page}&pageSize=100`);
    items.push(...data.items);
    if (items.length >= data.totalCount || data.items.length === 0) break;
  }
  return items;
}

/** Checkboxes to pick authors or categories by ID, with a filter box. */
function picker(label, name, items, selected) {
  const list = h('div', { class: 'pick-list', role: 'group', 'aria-label': label });
  const filter = h('input', { type: 'search', class: 'pick-filter', 'aria-label': `Filter ${label.toLowerCase()}`, placeholder: 'Filter…', testid: `${name}-filter` });
  const draw = () => {
    const f = filter.value.trim().toLowerCase();
    fill(list, ...items
      .filter((x) => !f || x.name.toLowerCase().includes(f) || selected.has(x.id))
      .slice(0, 200)
      .map((x) => {
        const id = `pick-${x.id}`;
        const box = h('input', { type: 'checkbox', id, value: x.id, checked: selected.has(x.id), testid: `${name}-option`, 'data-name': x.name });
        box.addEventListener('change', () => (box.checked ? selected.add(x.id) : selected.delete(x.id)));
        return h('div', { class: 'check' }, box, h('label', { for: id }, x.name));
      }));
  };
  filter.addEventListener('input', draw);
  draw();
  const errId = `pick-${name}-err`;
  return h('fieldset', { class: 'picker', testid: `${name}-picker` },
    h('legend', {}, label), filter, list,
    h('input', { type: 'hidden', name, 'aria-describedby': errId }),
    h('p', { class: 'field-error', id: errId, testid: `field-error-${name}`, hidden: true }));
}

async function bookFormView(id) {
  const isNew = !id || id === 'new';
  adminFrame('books', isNew ? 'Add a book' : 'Edit book', h('p', {}, 'Loading…'));
  let book = null;
  let etag = null;
  let authors;
  let categories;
  try {
    [authors, categories] = await Promise.all([fetchAll('/api/authors'), fetchAll('/api/categories')]);
    if (!isNew) {
      const r = await api('GET', `/api/books/${encodeURIComponent(id)}`);
      book = r.data;
      etag = r.headers.get('ETag');
    }
  } catch (err) {
    adminFrame('books', 'Book', h('p', { class: 'error' }, describeProblem(err).detail));
    return;
  }
  const selectedAuthors = new Set((book?.authors || []).map((a) => a.id));
  const selectedCategories = new Set((book?.categories || []).map((c) => c.id));
  const v = (k) => (book && book[k] !== null && book[k] !== undefined ? String(book[k]) : '');
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'book-submit' }, isNew ? 'Add book' : 'Save changes');
  const form = h('form', { class: 'stack', testid: 'book-form', novalidate: true },
    field('ISBN', 'isbn', { value: v('isbn'), required: true, inputmode: 'numeric', testid: 'book-isbn' }),
    field('Title', 'title', { value: v('title'), required: true, testid: 'book-title-input' }),
    field('Subtitle', 'subtitle', { value: v('subtitle'), testid: 'book-subtitle-input' }),
    field('Publisher', 'publisher', { value: v('publisher'), required: true, testid: 'book-publisher' }),
    h('div', { class: 'row3' },
      field('Year', 'publishedYear', { type: 'number', value: v('publishedYear'), testid: 'book-year' }),
      field('Language', 'language', { value: v('language'), placeholder: 'en', testid: 'book-language' }),
      field('Pages', 'pageCount', { type: 'number', min: '1', value: v('pageCount'), testid: 'book-pages' })),
    isNew ? field('Copies', 'totalCopies', { type: 'number', min: '0', value: '1', required: true, testid: 'book-copies' }) : null,
    field('Description', 'description', { testid: 'book-description-input', rows: '4' }, 'textarea'),
    picker('Authors', 'authorIds', authors, selectedAuthors),
    picker('Categories', 'categoryIds', categories, selectedCategories),
    errorBox(), submit);
  form.elements.description.value = v('description');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const f = formValues(form);
      const body = {
        isbn: f.isbn, title: f.title, subtitle: textOrNull(f.subtitle), description: textOrNull(form.elements.description.value.trim()),
        publisher: f.publisher, publishedYear: intOrNull(f.publishedYear), language: textOrNull(f.language), pageCount: intOrNull(f.pageCount),
        authorIds: [...selectedAuthors], categoryIds: [...selectedCategories],
      };
      if (isNew) {
        body.totalCopies = intOrNull(f.totalCopies);
        const { data } = await api('POST', '/api/books', { body });
        flash(`Added “${data.title}”.`, 'ok');
        location.hash = `#/book/${data.id}`;
      } else {
        const r = await api('PUT', `/api/books/${book.id}`, { body, headers: etag ? { 'If-Match': etag } : {} });
        etag = r.headers.get('ETag');
        flash(`Saved “${r.data.title}”.`, 'ok');
        location.hash = `#/book/${book.id}`;
      }
    });
  });

  const extra = [];
  if (!isNew) {
    const stockSubmit = h('button', { type: 'submit', testid: 'stock-submit' }, 'Change stock');
    const stock = h('form', { class: 'inline', testid: 'stock-form', novalidate: true },
      field('Copies owned', 'totalCopies', { type: 'number', min: '0', value: String(book.totalCopies), testid: 'stock-copies' }),
      stockSubmit, errorBox());
    stock.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(stockSubmit, stock, async () => {
        const r = await api('PUT', `/api/books/${book.id}/stock`, { body: { totalCopies: intOrNull(stock.elements.totalCopies.value) }, headers: etag ? { 'If-Match': etag } : {} });
        etag = r.headers.get('ETag');
        flash(`Stock of “${r.data.title}” is now ${r.data.totalCopies}.`, 'ok');
      });
    });
    const del = h('button', { type: 'button', class: 'danger', testid: 'book-delete' }, 'Delete this book');
    const delBox = h('div', {}, errorBox());
    del.addEventListener('click', () => {
      if (del.dataset.armed !== 'true') { del.dataset.armed = 'true'; del.textContent = 'Really delete? Click again'; return; }
      busy(del, delBox, async () => {
        await api('DELETE', `/api/books/${book.id}`, { headers: etag ? { 'If-Match': etag } : {} });
        flash(`Deleted “${book.title}”.`, 'ok');
        location.hash = '#/admin/books';
      });
    });
    extra.push(h('section', { 'aria-labelledby': 'stock-h' }, h('h2', { id: 'stock-h' }, 'Stock'), stock),
      h('section', { 'aria-labelledby': 'del-h' }, h('h2', { id: 'del-h' }, 'Delete'), del, delBox));
  }
  adminFrame('books', isNew ? 'Add a book' : `Edit: ${book.title}`, form, ...extra);
}

/** Authors and categories: the same list-with-form screen. */
function namedThingsScreen({ tab, title, path, fields, toBody, describe, search }) {
  return async (params) => {
    let editing = null;
    const submit = h('button', { type: 'submit', class: 'primary', testid: `${tab}-submit` }, 'Add');
    const cancel = h('button', { type: 'button', hidden: true, testid: `${tab}-cancel-edit` }, 'Cancel edit');
    const form = h('form', { class: 'stack', testid: `${tab}-form`, novalidate: true }, fields(), errorBox(), h('div', { class: 'buttons' }, submit, cancel));
    const list = h('div', {});
    const listBox = h('div', {}, errorBox(), list);
    const q = search ? (params.get('search') || '') : '';
    const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
    const resetForm = () => { editing = null; form.reset(); submit.textContent = 'Add'; cancel.hidden = true; clearErrors(form); };
    cancel.addEventListener('click', resetForm);
    const load = async () => {
      try {
        const { data } = await api('GET', `${path}${qs({ search: q, page, pageSize: 50 })}`);
        fill(list,
          h('p', { class: 'count' }, `${data.totalCount} in all`),
          h('ul', { class: 'rows', testid: `${tab}-list` }, data.items.map((x) => {
            const edit = h('button', { type: 'button', testid: `${tab}-edit` }, 'Edit');
            const del = h('button', { type: 'button', class: 'danger', testid: `${tab}-delete` }, 'Delete');
            edit.addEventListener('click', () => {
              editing = x;
              for (const el of form.elements) if (el.name && el.name in x) el.value = x[el.name] ?? '';
              submit.textContent = 'Save';
              cancel.hidden = false;
              form.elements[0].focus();
            });
            del.addEventListener('click', () => {
              if (del.dataset.armed !== 'true') { del.dataset.armed = 'true'; del.textContent = 'Really?'; return; }
              busy(del, listBox, async () => { await api('DELETE', `${path}/${x.id}`); flash(`Deleted ${x.name}.`, 'ok'); await load(); });
            });
            return h('li', { class: 'row', testid: `${tab}-row`, 'data-id': x.id, 'data-name': x.name },
              h('div', {}, h('strong', {}, x.name), describe(x) ? h('p', { class: 'meta' }, describe(x)) : null),
              h('div', { class: 'buttons' }, edit, del));
          })),
          data.totalCount > 50 ? pager(page, 50, data.totalCount, (p) => { location.hash = `#/admin/${tab}${qs({ search: q, page: p })}`; }) : null);
      } catch (err) {
        showError(listBox, err);
      }
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, form, async () => {
        const body = toBody(formValues(form));
        if (editing) {
          const { data } = await api('PUT', `${path}/${editing.id}`, { body });
          flash(`Saved ${data.name}.`, 'ok');
        } else {
          const { data } = await api('POST', path, { body });
          flash(`Added ${data.name}.`, 'ok');
        }
        resetForm();
        await load();
      });
    });
    let searchForm = null;
    if (search) {
      searchForm = h('form', { class: 'inline', role: 'search' }, field('Find', 'search', { type: 'search', value: q, testid: `${tab}-search` }), h('button', { type: 'submit' }, 'Find'));
      searchForm.addEventListener('submit', (e) => { e.preventDefault(); location.hash = `#/admin/${tab}${qs({ search: searchForm.elements.search.value.trim() })}`; });
    }
    adminFrame(tab, title, h('section', { 'aria-label': `Add or edit` }, form), searchForm, listBox);
    await load();
  };
}

const authorsView = namedThingsScreen({
  tab: 'authors',
  title: 'Authors',
  path: '/api/authors',
  search: true,
  fields: () => [
    field('Name', 'name', { required: true, testid: 'author-name' }),
    field('Born (year)', 'birthYear', { type: 'number', testid: 'author-birth-year' }),
    field('About', 'bio', { rows: '3', testid: 'author-bio' }, 'textarea'),
  ],
  toBody: (v) => ({ name: v.name, bio: textOrNull(v.bio), birthYear: intOrNull(v.birthYear) }),
  describe: (x) => [x.birthYear ? `born ${x.birthYear}` : '', x.bio || ''].filter(Boolean).join(' · '),
});

const categoriesView = namedThingsScreen({
  tab: 'categories',
  title: 'Categories',
  path: '/api/categories',
  search: false,
  fields: () => [
    field('Name', 'name', { required: true, testid: 'category-name' }),
    field('Description', 'description', { rows: '2', testid: 'category-description' }, 'textarea'),
  ],
  toBody: (v) => ({ name: v.name, description: textOrNull(v.description) }),
  describe: (x) => x.description || '',
});

async function readersView(params) {
  const search = params.get('search') || '';
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const form = h('form', { class: 'inline', role: 'search' },
    field('Name or email', 'search', { type: 'search', value: search, testid: 'readers-search' }),
    h('button', { type: 'submit', testid: 'readers-submit' }, 'Find'), errorBox());
  form.addEventListener('submit', (e) => { e.preventDefault(); location.hash = `#/admin/readers${qs({ search: form.elements.search.value.trim() })}`; });
  const list = h('div', {}, h('p', {}, 'Loading…'));
  adminFrame('readers', 'Readers', form, list);
  try {
    const { data } = await api('GET', `/api/users${qs({ search, page, pageSize: 20 })}`);
    fill(list,
      h('p', { class: 'count', testid: 'readers-count' }, `${data.totalCount} found`),
      h('ul', { class: 'rows', testid: 'readers-list' }, data.items.map((u) => h('li', { class: 'row', testid: 'reader-row', 'data-user-id': u.id },
        h('div', {}, h('strong', {}, `${u.firstName} ${u.lastName}`), h('p', { class: 'meta' }, `${u.email} · ${u.role}${u.active ? '' : ' · deactivated'} · since ${fmtDate(u.createdAt)}`)),
        h('div', { class: 'buttons' }, h('a', { class: 'button', href: `#/admin/account/${u.id}`, testid: 'reader-account' }, 'Account'))))),
      data.totalCount > 20 ? pager(page, 20, data.totalCount, (p) => { location.hash = `#/admin/readers${qs({ search, page: p })}`; }) : null);
  } catch (err) {
    fill(list);
    showError(form, err);
  }
}

async function borrowersView(params) {
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const box = h('div', {}, errorBox(), h('p', {}, 'Loading…'));
  adminFrame('borrowers', 'Borrowers', box);
  try {
    const { data } = await api('GET', `/api/borrowers${qs({ page, pageSize: 20 })}`);
    fill(box,
      h('p', { class: 'count' }, `${data.totalCount} readers with books out`),
      h('ul', { class: 'rows', testid: 'borrowers-list' }, data.items.map((b) => h('li', { class: 'row block', testid: 'borrower-row', 'data-user-id': b.userId },
        h('strong', {}, `${b.firstName} ${b.lastName}`), h('span', { class: 'meta' }, ` ${b.email}`),
        h('ul', {}, b.loans.map((l) => h('li', {}, h('a', { href: `#/book/${l.bookId}` }, l.title), ` · due ${fmtDate(l.dueAt)} · `, h('span', { class: `badge ${l.status}` }, l.status))))))),
      data.totalCount > 20 ? pager(page, 20, data.totalCount, (p) => { location.hash = `#/admin/borrowers${qs({ page: p })}`; }) : null);
  } catch (err) {
    fill(box, errorBox());
    showError(box, err);
  }
}

async function unavailableView(params) {
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const box = h('div', {}, errorBox(), h('p', {}, 'Loading…'));
  adminFrame('unavailable', 'Unavailable titles', box);
  try {
    const { data } = await api('GET', `/api/unavailable-books${qs({ page, pageSize: 20 })}`);
    fill(box,
      h('p', { class: 'count' }, `${data.totalCount} titles with no copy on the shelf`),
      h('ul', { class: 'rows', testid: 'unavailable-list' }, data.items.map((b) => h('li', { class: 'row', testid: 'unavailable-row', 'data-book-id': b.bookId },
        h('div', {}, h('a', { href: `#/book/${b.bookId}` }, b.title),
          h('p', { class: 'meta' }, `${b.onLoan} of ${b.totalCopies} on loan${b.nextAvailableAt ? ` · next back ${fmtDate(b.nextAvailableAt)}` : ''}`))))),
      data.totalCount > 20 ? pager(page, 20, data.totalCount, (p) => { location.hash = `#/admin/unavailable${qs({ page: p })}`; }) : null);
  } catch (err) {
    fill(box, errorBox());
    showError(box, err);
  }
}

// ---------------------------------------------------------------- the desk: check-out and check-in by barcode

const readerName = (u) => [u.firstName, u.lastName].filter(Boolean).join(' ') || u.email || u.id;

/** A reader's name by ID (librarians), or null when it cannot be looked up. */
async function readerById(id) {
  try {
    const { data } = await api('GET', `/api/users/${encodeURIComponent(id)}`);
    return data;
  } catch {
    return null;
  }
}

/** A barcode field: a scanner types the barcode and Enter, which submits its form. */
const barcodeField = (label, testid) =>
  field(label, 'barcode', { testid, autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', maxlength: '32', required: true });

/** After a desk action, the barcode field is ready for the next scan: emptied after a success, selected after a refusal. */
function readyForNextScan(input, ok) {
  if (ok) input.value = '';
  input.focus();
  input.select();
}

function routedText(data, holdReader) {
  switch (data.routedTo) {
    case 'shelf': return 'Goes to: shelf.';
    case 'hold-shelf': return `Goes to: hold shelf, for ${holdReader ? readerName(holdReader) : 'the reader first in the queue'}${data.hold?.readyUntil ? ` (to pick up by ${fmtDate(data.hold.readyUntil)})` : ''}.`;
    case 'withdrawn': return 'Goes to: withdrawn. Take this copy out of circulation.';
    default: return `Goes to: ${data.routedTo}.`;
  }
}

async function deskView(params) {
  let reader = null;

  // The reader picker: find by name or email, choose one.
  const findButton = h('button', { type: 'submit', testid: 'desk-reader-find' }, 'Find reader');
  const picker = h('form', { class: 'inline', role: 'search', testid: 'desk-reader-form' },
    field('Reader: name or email', 'search', { type: 'search', autocomplete: 'off', testid: 'desk-reader-search' }),
    findButton, errorBox());
  const results = h('div', { testid: 'desk-reader-results' });
  const chosen = h('p', { class: 'chosen', testid: 'desk-reader' }, 'No reader chosen yet.');
  const loansBody = h('div', {});
  const loans = h('section', { 'aria-labelledby': 'reader-loans-h', testid: 'reader-loans', hidden: true },
    h('h2', { id: 'reader-loans-h' }, 'Their loans'), errorBox(), loansBody);

  // Check-out.
  const outSubmit = h('button', { type: 'submit', class: 'primary', testid: 'checkout-submit' }, 'Check out');
  const userErr = `checkout-userId-${Math.random().toString(36).slice(2, 8)}`;
  const out = h('form', { class: 'inline desk-form', testid: 'checkout-form', novalidate: true },
    barcodeField('Barcode to check out', 'checkout-barcode'),
    field('Days (optional)', 'days', { type: 'number', min: '1', inputmode: 'numeric', testid: 'checkout-days' }),
    h('input', { type: 'hidden', name: 'userId', 'aria-describedby': userErr }),
    outSubmit,
    h('p', { class: 'field-error', id: userErr, testid: 'field-error-userId', hidden: true }),
    errorBox());
  const outResult = h('div', { testid: 'checkout-result', 'aria-live': 'polite' });

  // Check-in.
  const inSubmit = h('button', { type: 'submit', class: 'primary', testid: 'checkin-submit' }, 'Check in');
  const back = h('form', { class: 'inline desk-form', testid: 'checkin-form', novalidate: true },
    barcodeField('Barcode to check in', 'checkin-barcode'), inSubmit, errorBox());
  const inResult = h('div', { testid: 'checkin-result', 'aria-live': 'polite' });

  const loadLoans = async () => {
    if (!reader) { loans.hidden = true; return; }
    loans.hidden = false;
    try {
      const { data } = await api('GET', `/api/loans${qs({ userId: reader.id, page: 1, pageSize: 50 })}`);
      const current = data.items.filter((l) => !l.returnedAt);
      fill(loansBody, current.length
        ? h('ul', { class: 'rows', testid: 'reader-loans-list' }, current.map((l) =>
          h('li', { class: `row status-${l.status}`, testid: 'reader-loan-row', 'data-loan-id': l.id, 'data-barcode': l.barcode || '', 'data-status': l.status, 'data-due-at': l.dueAt },
            h('div', {},
              h('a', { href: `#/book/${l.bookId}` }, l.title),
              h('p', { class: 'meta' },
                h('span', { class: `badge ${l.status}`, testid: 'reader-loan-status' }, l.status),
                l.barcode ? ` ${l.barcode} · ` : ' ',
                h('span', { testid: 'reader-loan-due' }, `due ${fmtDate(l.dueAt)}`),
                l.renewals ? ` · renewed ${l.renewals}×` : '')))))
        : h('p', { class: 'empty', testid: 'reader-loans-empty' }, 'No books out.'));
    } catch (err) {
      fill(loansBody);
      showError(loans, err);
    }
  };

  const choose = (u) => {
    reader = u;
    out.elements.userId.value = u.id;
    fill(results);
    const change = h('button', { type: 'button', class: 'link', testid: 'desk-reader-change' }, 'Choose another');
    change.addEventListener('click', () => {
      reader = null;
      out.elements.userId.value = '';
      fill(chosen, 'No reader chosen yet.');
      loans.hidden = true;
      picker.elements.search.focus();
    });
    fill(chosen, 'Lending to ', h('strong', { testid: 'desk-reader-name', 'data-user-id': u.id }, readerName(u)),
      u.email ? ` (${u.email})` : '', u.active === false ? ' · deactivated' : '', ' ', change);
    loadLoans();
    out.elements.barcode.focus();
  };

  picker.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(findButton, picker, async () => {
      const { data } = await api('GET', `/api/users${qs({ search: picker.elements.search.value.trim(), page: 1, pageSize: 10 })}`);
      fill(results, data.items.length
        ? h('ul', { class: 'rows', testid: 'desk-reader-list' }, data.items.map((u) =>
          h('li', { class: 'row', testid: 'desk-reader-option', 'data-user-id': u.id },
            h('div', {}, h('strong', {}, readerName(u)), h('p', { class: 'meta' }, `${u.email} · ${u.role}${u.active ? '' : ' · deactivated'}`)),
            h('button', { type: 'button', testid: 'desk-reader-choose', 'aria-label': `Choose ${readerName(u)}`, onclick: () => choose(u) }, 'Choose'))))
        : h('p', { class: 'empty', testid: 'desk-reader-none' }, 'No reader found.'));
    });
  });

  out.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = out.elements.barcode;
    let ok = false;
    busy(outSubmit, out, async () => {
      fill(outResult);
      const { data: loan } = await api('POST', '/api/circulation/check-out', {
        body: { barcode: input.value.trim(), userId: reader?.id ?? null, days: intOrNull(out.elements.days.value.trim()) },
        headers: { 'Idempotency-Key': uuid() },
      });
      ok = true;
      fill(outResult, h('div', { class: 'msg ok desk-result', testid: 'checkout-done', 'data-loan-id': loan.id, 'data-due-at': loan.dueAt, 'data-barcode': loan.barcode || '' },
        h('strong', {}, `Checked out ${loan.barcode || input.value.trim()}: “${loan.title}”`),
        h('p', {}, `To ${reader ? readerName(reader) : 'the reader'}, due `, h('strong', { testid: 'checkout-due' }, fmtDate(loan.dueAt)), '.')));
      loadLoans();
    }).then(() => readyForNextScan(input, ok));
  });

  back.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = back.elements.barcode;
    let ok = false;
    busy(inSubmit, back, async () => {
      fill(inResult);
      const { data } = await api('POST', '/api/circulation/check-in', { body: { barcode: input.value.trim() }, headers: { 'Idempotency-Key': uuid() } });
      ok = true;
      const holdReader = data.routedTo === 'hold-shelf' && data.hold ? await readerById(data.hold.userId) : null;
      fill(inResult, h('div', { class: `msg ok desk-result routed-${data.routedTo}`, testid: 'checkin-done', 'data-routed-to': data.routedTo, 'data-barcode': data.copy?.barcode || '' },
        h('strong', {}, `Checked in ${data.copy?.barcode || input.value.trim()}: “${data.loan.title}”`),
        h('p', { testid: 'checkin-routed' }, routedText(data, holdReader)),
        data.loan.dueAt && new Date(data.loan.returnedAt || Date.now()) > new Date(data.loan.dueAt)
          ? h('p', {}, `It was due ${fmtDate(data.loan.dueAt)}.`) : null));
      if (reader && data.loan.userId === reader.id) loadLoans();
    }).then(() => readyForNextScan(input, ok));
  });

  adminFrame('desk', 'Desk',
    h('div', { class: 'desk' },
      h('section', { 'aria-labelledby': 'checkout-h', class: 'panel', testid: 'checkout' },
        h('h2', { id: 'checkout-h' }, 'Check out'), picker, results, chosen, out, outResult, loans),
      h('section', { 'aria-labelledby': 'checkin-h', class: 'panel', testid: 'checkin' },
        h('h2', { id: 'checkin-h' }, 'Check in'), back, inResult)));

  const preset = params.get('reader');
  if (preset) {
    const u = await readerById(preset);
    if (u) choose(u);
  } else {
    picker.elements.search.focus();
  }
}

// ---------------------------------------------------------------- a title's copies

async function renderCopies(section, book) {
  const staff = isStaff();
  const body = h('div', {}, h('p', {}, 'Loading…'));
  const heading = h('h2', { id: 'copies-h' }, 'Copies');
  const form = staff ? addCopyForm(book, () => renderCopies(section, book)) : null;
  fill(section, heading, errorBox(), body, form);
  let copies;
  try {
    ({ data: copies } = await api('GET', `/api/books/${book.id}/copies`));
  } catch (err) {
    fill(body);
    showError(section, err);
    return;
  }
  const names = new Map();
  if (staff) {
    const ids = [...new Set(copies.map((c) => c.userId).filter(Boolean))];
    await Promise.all(ids.map(async (id) => names.set(id, await readerById(id))));
  }
  const cols = ['Barcode', 'Call number', 'Location', 'Loan type', 'Status', 'Due', ...(staff ? ['Borrower'] : [])];
  fill(body, copies.length
    ? h('div', { class: 'table-wrap' }, h('table', { class: 'grid', testid: 'copies-table' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, copies.map((c) => h('tr', { testid: 'copy-row', 'data-copy-id': c.id, 'data-barcode': c.barcode, 'data-status': c.status },
        h('th', { scope: 'row', testid: 'copy-barcode' }, c.barcode),
        h('td', {}, c.callNumber || '—'),
        h('td', {}, c.location || '—'),
        h('td', {}, c.loanType),
        h('td', {}, h('span', { class: `badge ${c.status}`, testid: 'copy-status' }, c.status), c.withdrawOnCheckIn ? ' (withdraw on check-in)' : ''),
        h('td', { testid: 'copy-due' }, c.dueAt ? fmtDate(c.dueAt) : '—'),
        staff ? h('td', { testid: 'copy-borrower' }, c.userId
          ? h('a', { href: `#/admin/desk${qs({ reader: c.userId })}` }, names.get(c.userId) ? readerName(names.get(c.userId)) : 'a reader')
          : '—') : null)))))
    : h('p', { class: 'empty', testid: 'copies-empty' }, 'No copies.'));
}

function addCopyForm(book, reload) {
  const submit = h('button', { type: 'submit', testid: 'copy-add-submit' }, 'Add copy');
  const loanType = field('Loan type', 'loanType', { testid: 'copy-loan-type', options: [['', 'standard (default)']] }, 'select');
  const form = h('form', { class: 'inline', testid: 'copy-add-form', novalidate: true, 'aria-label': 'Add a copy' },
    field('New copy barcode', 'barcode', { autocomplete: 'off', maxlength: '32', required: true, testid: 'copy-barcode-input' }),
    field('Call number', 'callNumber', { testid: 'copy-call-number' }),
    field('Location', 'location', { testid: 'copy-location' }),
    loanType, submit, errorBox());
  api('GET', '/api/loan-types').then(({ data }) => {
    const select = loanType.querySelector('select');
    fill(select, h('option', { value: '' }, 'standard (default)'),
      data.map((t) => h('option', { value: t.name }, `${t.name}${t.loanable ? '' : ' (not lent)'}`)));
  }).catch(() => { /* the default loan type still works */ });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const v = formValues(form);
      const { data } = await api('POST', `/api/books/${book.id}/copies`, {
        body: { barcode: v.barcode, callNumber: textOrNull(v.callNumber), location: textOrNull(v.location), loanType: textOrNull(v.loanType) },
      });
      flash(`Added copy ${data.barcode} of “${book.title}”.`, 'ok');
      await reload();
    });
  });
  return h('div', { class: 'add-copy' }, h('h3', {}, 'Add a copy'), form);
}

// ---------------------------------------------------------------- admin: circulation rules and the calendar

const RULE_NUMBERS = [
  ['loanDays', 'Loan days'], ['maxLoanDays', 'Max loan days'], ['maxActiveLoans', 'Max active loans'], ['maxRenewals', 'Max renewals'],
  ['renewalDays', 'Renewal days'], ['holdPickupDays', 'Hold pickup days'], ['gracePeriodDays', 'Grace days'],
  ['finePerDay', 'Fine per day'], ['maxFinePerLoan', 'Max fine per loan'], ['lostFee', 'Lost fee'],
];

/** A control in a table cell with its own label (visually hidden) and error slot, named as the API's errors name it. */
function cellControl(label, name, control) {
  const id = `c-${name.replace(/[^A-Za-z0-9]/g, '-')}-${Math.random().toString(36).slice(2, 6)}`;
  const errId = `${id}-err`;
  control.id = id;
  control.name = name;
  control.setAttribute('aria-describedby', errId);
  return h('td', {}, h('label', { for: id, class: 'visually-hidden' }, label), control,
    h('p', { class: 'field-error', id: errId, testid: `field-error-${name}`, hidden: true }));
}

async function rulesView() {
  adminFrame('rules', 'Circulation rules', h('p', {}, 'Loading…'));
  let rules;
  let groups;
  let types;
  try {
    [rules, groups, types] = (await Promise.all([api('GET', '/api/circulation-rules'), api('GET', '/api/patron-groups'), api('GET', '/api/loan-types')])).map((r) => r.data);
  } catch (err) {
    adminFrame('rules', 'Circulation rules', h('p', { class: 'error' }, describeProblem(err).detail));
    return;
  }
  groups = Array.isArray(groups) ? groups : groups.items || [];
  const tbody = h('tbody', { testid: 'rules-rows' });
  const read = () => [...tbody.rows].map((tr, i) => {
    const el = (k) => tr.querySelector(`[name="rules[${i}].${k}"]`);
    const rule = { patronGroupId: textOrNull(el('patronGroupId').value), loanType: textOrNull(el('loanType').value), loanable: el('loanable').checked };
    for (const [k] of RULE_NUMBERS) {
      const s = el(k).value.trim();
      rule[k] = /^-?\d+$/.test(s) ? Number.parseInt(s, 10) : s;
    }
    return rule;
  });
  const draw = (list) => {
    fill(tbody, list.map((r, i) => {
      const n = `Rule ${i + 1}`;
      const group = h('select', {}, h('option', { value: '' }, 'any group'), groups.map((g) => h('option', { value: g.id }, g.name)));
      group.value = r.patronGroupId || '';
      const type = h('select', {}, h('option', { value: '' }, 'any type'), types.map((t) => h('option', { value: t.name }, t.name)));
      type.value = r.loanType || '';
      const move = (d) => { const all = read(); const [x] = all.splice(i, 1); all.splice(i + d, 0, x); draw(all); };
      return h('tr', { testid: 'rule-row' },
        h('th', { scope: 'row' }, String(i + 1)),
        cellControl(`${n}: patron group`, `rules[${i}].patronGroupId`, group),
        cellControl(`${n}: loan type`, `rules[${i}].loanType`, type),
        cellControl(`${n}: loanable`, `rules[${i}].loanable`, h('input', { type: 'checkbox', checked: !!r.loanable })),
        RULE_NUMBERS.map(([k, label]) => cellControl(`${n}: ${label.toLowerCase()}`, `rules[${i}].${k}`,
          h('input', { type: 'number', value: String(r[k] ?? ''), min: '0', inputmode: 'numeric', class: 'num', testid: `rule-${i}-${k}` }))),
        h('td', { class: 'buttons' },
          h('button', { type: 'button', 'aria-label': `Move rule ${i + 1} up`, disabled: i === 0, onclick: () => move(-1) }, '↑'),
          h('button', { type: 'button', 'aria-label': `Move rule ${i + 1} down`, disabled: i === list.length - 1, onclick: () => move(1) }, '↓'),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Remove rule ${i + 1}`, onclick: () => { const all = read(); all.splice(i, 1); draw(all); } }, '✕')));
    }));
  };
  draw(rules);
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'rules-submit' }, 'Save rules');
  const add = h('button', { type: 'button', testid: 'rules-add' }, 'Add a rule');
  add.addEventListener('click', () => {
    const all = read();
    const last = all[all.length - 1] || {};
    // A new rule goes before the catch-all, which stays last.
    all.splice(Math.max(0, all.length - 1), 0, { ...last, patronGroupId: null, loanType: null });
    draw(all);
  });
  const form = h('form', { testid: 'rules-form', novalidate: true },
    h('p', { class: 'meta' }, 'The first rule that matches a reader’s patron group and a copy’s loan type decides; the last rule must match everyone (any group, any type). Fines are in the smallest currency unit.'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid rules' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '#'), h('th', { scope: 'col' }, 'Patron group'), h('th', { scope: 'col' }, 'Loan type'), h('th', { scope: 'col' }, 'Loanable'),
        RULE_NUMBERS.map(([, label]) => h('th', { scope: 'col' }, label)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Order')))),
      tbody)),
    errorBox(),
    h('div', { class: 'buttons' }, add, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const { data } = await api('PUT', '/api/circulation-rules', { body: read() });
      draw(data);
      flash(`Saved ${data.length} circulation ${data.length === 1 ? 'rule' : 'rules'}.`, 'ok');
    });
  });
  adminFrame('rules', 'Circulation rules', form);
}

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

async function calendarView() {
  adminFrame('calendar', 'Calendar', h('p', {}, 'Loading…'));
  let cal;
  try {
    ({ data: cal } = await api('GET', '/api/calendar'));
  } catch (err) {
    adminFrame('calendar', 'Calendar', h('p', { class: 'error' }, describeProblem(err).detail));
    return;
  }
  const weeklyErr = 'cal-weekly-err';
  const weekly = h('fieldset', { class: 'picker', testid: 'calendar-weekly' }, h('legend', {}, 'Closed every week on'),
    WEEKDAYS.map((d) => h('div', { class: 'check' },
      h('input', { type: 'checkbox', id: `cal-${d}`, name: 'weeklyClosed', value: d, checked: cal.weeklyClosed.includes(d), 'aria-describedby': weeklyErr, testid: `calendar-closed-${d}` }),
      h('label', { for: `cal-${d}` }, d.charAt(0).toUpperCase() + d.slice(1)))),
    h('p', { class: 'field-error', id: weeklyErr, testid: 'field-error-weeklyClosed', hidden: true }));
  const dates = h('ul', { class: 'rows', testid: 'calendar-dates' });
  const readDates = () => [...dates.children].map((li) => ({
    date: li.querySelector('input[type="date"]').value,
    reason: textOrNull(li.querySelector('input[type="text"]').value.trim()),
  }));
  const drawDates = (list) => {
    fill(dates, list.map((c, i) => {
      const date = field(`Closed date ${i + 1}`, `closedDates[${i}].date`, { type: 'date', value: c.date || '', testid: `calendar-date-${i}` });
      const reason = field('Reason', `closedDates[${i}].reason`, { value: c.reason || '', testid: `calendar-reason-${i}` });
      const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Remove closed date ${i + 1}`, onclick: () => { const all = readDates(); all.splice(i, 1); drawDates(all); } }, 'Remove');
      return h('li', { class: 'row inline', testid: 'calendar-date-row' }, date, reason, remove);
    }));
  };
  drawDates(cal.closedDates);
  const addDate = h('button', { type: 'button', testid: 'calendar-add-date' }, 'Add a closed date');
  addDate.addEventListener('click', () => {
    drawDates([...readDates(), { date: '', reason: null }]);
    dates.lastElementChild?.querySelector('input')?.focus();
  });
  const datesErr = 'cal-dates-err';
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'calendar-submit' }, 'Save calendar');
  const form = h('form', { class: 'stack', testid: 'calendar-form', novalidate: true },
    field('Time zone (IANA, e.g. Europe/Oslo)', 'timeZone', { value: cal.timeZone, autocomplete: 'off', testid: 'calendar-time-zone' }),
    weekly,
    h('fieldset', { class: 'picker' }, h('legend', {}, 'Closed dates'), dates, addDate,
      h('input', { type: 'hidden', name: 'closedDates', 'aria-describedby': datesErr }),
      h('p', { class: 'field-error', id: datesErr, testid: 'field-error-closedDates', hidden: true })),
    errorBox(), submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const body = {
        timeZone: form.elements.timeZone.value.trim(),
        weeklyClosed: [...form.querySelectorAll('input[name="weeklyClosed"]:checked')].map((c) => c.value),
        closedDates: readDates(),
      };
      const { data } = await api('PUT', '/api/calendar', { body });
      drawDates(data.closedDates);
      flash('Saved the calendar.', 'ok');
    });
  });
  adminFrame('calendar', 'Calendar', form);
}

// ---------------------------------------------------------------- fines, blocks, notices: the account

/** Money in minor units (cents), shown in the library's currency. */
function money(minor, currency) {
  const amount = Number(minor || 0) / 100;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'EUR' }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency || ''}`.trim();
  }
}

/** Parses "12.50" or "12,50" into minor units; null when it is not an amount. */
function toMinor(text) {
  const s = String(text || '').trim().replace(',', '.');
  if (!/^\d+(\.\d{1,2})?$/.test(s)) return null;
  const [whole, frac = ''] = s.split('.');
  return Number.parseInt(whole, 10) * 100 + Number.parseInt((frac + '00').slice(0, 2), 10);
}

const BLOCK_SOURCES = { fines: 'Fines', overdue: 'Overdue loan', limit: 'Loan limit', manual: 'Placed by the library' };
const NOTICE_KINDS = {
  'due-soon': 'Due soon', overdue: 'Overdue', 'hold-ready': 'Hold ready', 'hold-expired': 'Hold expired', 'fine-charged': 'Fine charged',
};

/** The blocks of an account, each with what it stops; librarians get a Lift button on manual ones. */
function blockList(blocks, { onLift } = {}) {
  if (!blocks?.length) return h('p', { class: 'empty', testid: 'blocks-none' }, 'No blocks: borrowing, renewing and holds are open.');
  return h('ul', { class: 'rows', testid: 'blocks-list' }, blocks.map((b) => {
    const stops = [b.borrowing !== false && 'borrowing', b.renewals !== false && 'renewing', b.holds !== false && 'holds'].filter(Boolean);
    const lift = onLift && b.source === 'manual' && b.id
      ? h('button', { type: 'button', class: 'danger', testid: 'block-lift', onclick: (e) => onLift(b, e.currentTarget) }, 'Lift')
      : null;
    return h('li', { class: 'row', testid: 'block-row', 'data-source': b.source, 'data-block-id': b.id || '' },
      h('div', {},
        h('strong', {}, BLOCK_SOURCES[b.source] || b.source),
        h('p', { class: 'meta' }, b.reason || '',
          stops.length ? ` · stops ${stops.join(', ')}` : '',
          b.expiresAt ? ` · until ${fmtDate(b.expiresAt)}` : '')),
      lift ? h('div', { class: 'buttons' }, lift) : null);
  }));
}

/** A reader's fines as a table; librarians pay and waive open ones in place. */
function fineTable(fines, currency, { staff, section, reload } = {}) {
  if (!fines.length) return h('p', { class: 'empty', testid: 'fines-none' }, 'No fines.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid', testid: 'fines-table' },
    h('thead', {}, h('tr', {}, ['Title', 'Kind', 'Charged', 'Amount', 'Paid', 'Status', staff ? 'Take' : null].filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, fines.map((f) => {
      let actions = null;
      if (staff && f.status === 'open') {
        const pay = h('form', { class: 'inline compact', testid: 'fine-pay-form', novalidate: true },
          field('Amount', 'amount', { inputmode: 'decimal', value: ((f.amount - f.paidAmount) / 100).toFixed(2), testid: 'fine-pay-amount', size: '7' }),
          h('button', { type: 'submit', class: 'primary', testid: 'fine-pay' }, 'Take payment'), errorBox());
        pay.addEventListener('submit', (e) => {
          e.preventDefault();
          busy(pay.querySelector('button'), pay, async () => {
            const minor = toMinor(pay.elements.amount.value);
            if (minor === null) throw new ApiError(400, { title: 'Bad amount', errors: { amount: ['Write an amount such as 2.50.'] } });
            await api('POST', `/api/fines/${f.id}/payments`, { body: { amount: minor } });
            flash(`Payment of ${money(minor, currency)} taken for “${f.title}”.`, 'ok');
            await reload();
          });
        });
        const waive = h('form', { class: 'inline compact', testid: 'fine-waive-form', novalidate: true },
          field('Reason to waive', 'reason', { testid: 'fine-waive-reason', maxlength: '500' }),
          h('button', { type: 'submit', testid: 'fine-waive' }, 'Waive'), errorBox());
        waive.addEventListener('submit', (e) => {
          e.preventDefault();
          busy(waive.querySelector('button'), waive, async () => {
            await api('POST', `/api/fines/${f.id}/waive`, { body: { reason: waive.elements.reason.value.trim() } });
            flash(`Fine for “${f.title}” waived.`, 'ok');
            await reload();
          });
        });
        actions = h('td', {}, pay, waive);
      } else if (staff) actions = h('td', {});
      return h('tr', { testid: 'fine-row', 'data-fine-id': f.id, 'data-status': f.status, 'data-kind': f.kind },
        h('td', {}, f.bookId ? h('a', { href: `#/book/${f.bookId}` }, f.title || 'Book') : (f.title || '')),
        h('td', {}, f.kind),
        h('td', {}, fmtDate(f.createdAt)),
        h('td', { testid: 'fine-amount' }, money(f.amount, currency)),
        h('td', { testid: 'fine-paid' }, money(f.paidAmount, currency)),
        h('td', {}, h('span', { class: `badge ${f.status}`, testid: 'fine-status' }, f.status)),
        actions);
    }))));
}

/** Balance, blocks and fines of one reader: the reader's own page and the librarian's both use it. */
async function renderAccount(box, userId, { staff }) {
  fill(box, h('p', {}, 'Loading…'));
  const reload = () => renderAccount(box, userId, { staff });
  const [{ data: account }, { data: fines }] = await Promise.all([
    api('GET', `/api/users/${encodeURIComponent(userId)}/account`),
    api('GET', `/api/fines${qs({ userId, page: 1, pageSize: 50 })}`),
  ]);
  const currency = account.currency;
  const openCount = Array.isArray(account.openFines) ? account.openFines.length : account.openFines;
  const section = h('section', { 'aria-labelledby': 'fines-h', testid: 'fines' }, h('h2', { id: 'fines-h' }, 'Fines'), errorBox());
  section.append(fineTable(fines.items, currency, { staff, section, reload }));
  const onLift = staff ? (b, button) => busy(button, null, async () => {
    await api('DELETE', `/api/blocks/${b.id}`);
    flash('Block lifted.', 'ok');
    await reload();
  }) : undefined;
  fill(box,
    h('p', { class: 'balance', testid: 'account-balance', 'data-balance': account.balance },
      'Balance: ', h('strong', {}, money(account.balance, currency)),
      openCount ? ` in ${openCount} open fine${openCount === 1 ? '' : 's'}` : '',
      account.accruing?.length ? h('span', { testid: 'account-accruing' }, ` · ${money(account.accruing.reduce((t, a) => t + a.amount, 0), currency)} more accruing on overdue loans`) : ''),
    h('section', { 'aria-labelledby': 'blocks-h', testid: 'blocks' }, h('h2', { id: 'blocks-h' }, 'Blocks'), blockList(account.blocks, { onLift })),
    staff ? placeBlockForm(userId, reload) : null,
    section);
}

function placeBlockForm(userId, reload) {
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'block-submit' }, 'Place block');
  const check = (label, name) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name, checked: true, testid: `block-${name}` }), label);
  const form = h('form', { class: 'stack', testid: 'block-form', novalidate: true },
    h('h2', {}, 'Place a block'),
    field('Reason', 'reason', { testid: 'block-reason', maxlength: '500', required: true }),
    field('Until (optional)', 'expiresAt', { type: 'date', testid: 'block-expires' }),
    h('fieldset', {}, h('legend', {}, 'It stops'), check('Borrowing', 'borrowing'), check('Renewing', 'renewals'), check('New holds', 'holds')),
    errorBox(), h('div', { class: 'buttons' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      const until = form.elements.expiresAt.value;
      await api('POST', `/api/users/${encodeURIComponent(userId)}/blocks`, {
        body: {
          reason: form.elements.reason.value.trim(),
          expiresAt: until ? new Date(`${until}T23:59:59`).toISOString() : null,
          borrowing: form.elements.borrowing.checked,
          renewals: form.elements.renewals.checked,
          holds: form.elements.holds.checked,
        },
      });
      flash('Block placed.', 'ok');
      await reload();
    });
  });
  return form;
}

async function noticesFeed(box, page) {
  try {
    const { data } = await api('GET', `/api/notices${qs({ page, pageSize: 20 })}`);
    fill(box, data.items.length
      ? h('ul', { class: 'rows', testid: 'notices-list' }, data.items.map((n) => h('li', { class: 'row', testid: 'notice-row', 'data-kind': n.kind },
        h('div', {},
          h('strong', {}, NOTICE_KINDS[n.kind] || n.kind), ' · ',
          n.bookId ? h('a', { href: `#/book/${n.bookId}` }, n.title || 'Book') : (n.title || ''),
          h('p', { class: 'meta' }, n.sentAt ? `sent ${fmtDateTime(n.sentAt)} by ${n.channel}` : `to be sent by ${n.channel}`)))))
      : h('p', { class: 'empty', testid: 'notices-empty' }, 'No notices yet.'),
      data.totalCount > 20 ? pager(page, 20, data.totalCount, (p) => { location.hash = `#/account${qs({ page: p })}`; }, 'notices-pager') : null);
  } catch (err) {
    fill(box, errorBox());
    showError(box, err);
  }
}

async function accountView(params) {
  if (!session.user) return needLogin();
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const account = h('div', { testid: 'account' });
  const notices = h('div', {}, h('p', {}, 'Loading…'));
  const privacy = h('section', { 'aria-labelledby': 'privacy-h', testid: 'privacy' }, h('h2', { id: 'privacy-h' }, 'Privacy'), errorBox());
  view('My account', account,
    h('section', { 'aria-labelledby': 'notices-h' }, h('h2', { id: 'notices-h' }, 'Notices'), notices),
    privacy);
  const me = api('GET', '/api/users/me').then(({ data }) => data).catch(() => null);
  await Promise.all([
    renderAccount(account, session.user.id, { staff: false }).catch((err) => { fill(account, errorBox()); showError(account, err); }),
    noticesFeed(notices, page),
    me.then((u) => {
      const box = h('input', { type: 'checkbox', name: 'keepLoanHistory', checked: u ? u.keepLoanHistory !== false : true, testid: 'privacy-keep' });
      const save = h('button', { type: 'button', testid: 'privacy-save' }, 'Save');
      save.addEventListener('click', () => busy(save, privacy, async () => {
        await api('PUT', '/api/users/me/privacy', { body: { keepLoanHistory: box.checked } });
        flash(box.checked ? 'Your loan history is kept.' : 'Your returned loans no longer name you.', 'ok');
      }));
      privacy.append(
        h('label', { class: 'check' }, box, 'Keep my loan history (for my list of returned loans and personal recommendations)'),
        h('p', { class: 'meta' }, 'Without it, each loan forgets you when you return it.'),
        h('div', { class: 'buttons' }, save));
    }),
  ]);
}

async function readerAccountView(id) {
  const box = h('div', { testid: 'account' });
  const who = h('p', { testid: 'account-reader' });
  adminFrame('readers', 'Reader account', who, box);
  const u = await readerById(id);
  fill(who, u ? `${readerName(u)} · ${u.email}` : id, ' · ', h('a', { href: `#/admin/desk${qs({ reader: id })}` }, 'Open at the desk'));
  try {
    await renderAccount(box, id, { staff: true });
  } catch (err) {
    fill(box, errorBox());
    showError(box, err);
  }
}

// ---------------------------------------------------------------- reports, import, export

/** GET with a chosen Accept, saved as a file (the token goes in a header, so a plain link would not do). */
async function download(path, accept, filename) {
  const r = await fetch(path, { headers: { Accept: accept, Authorization: `Bearer ${session.access}` } });
  if (!r.ok) {
    const problem = await r.json().catch(() => ({ title: r.statusText }));
    throw new ApiError(r.status, problem, r.headers.get('Retry-After'));
  }
  const blob = await r.blob();
  const a = h('a', { href: URL.createObjectURL(blob), download: filename, hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  return blob;
}

const CIRCULATION_COLUMNS = [
  ['date', 'Day'], ['loans', 'Loans'], ['returns', 'Returns'], ['renewals', 'Renewals'], ['holdsPlaced', 'Holds placed'],
  ['holdsFilled', 'Holds filled'], ['overdue', 'Overdue'], ['finesCharged', 'Fines charged'], ['finesPaid', 'Fines paid'],
];

async function reportsView(params) {
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
  const from = params.get('from') || monthAgo;
  const to = params.get('to') || today;
  const form = h('form', { class: 'inline', testid: 'reports-form', novalidate: true },
    field('From', 'from', { type: 'date', value: from, testid: 'reports-from' }),
    field('To', 'to', { type: 'date', value: to, testid: 'reports-to' }),
    h('button', { type: 'submit', class: 'primary', testid: 'reports-submit' }, 'Show'), errorBox());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#/admin/reports${qs({ from: form.elements.from.value, to: form.elements.to.value })}`;
  });
  const range = qs({ from, to });
  const csvButton = (label, path, file, testid) => {
    const b = h('button', { type: 'button', testid }, label);
    b.addEventListener('click', () => busy(b, form, () => download(path, 'text/csv', file)));
    return b;
  };
  const circulation = h('section', { 'aria-labelledby': 'circ-h', testid: 'report-circulation' },
    h('h2', { id: 'circ-h' }, 'Circulation per day'),
    csvButton('Download CSV', `/api/reports/circulation${range}`, `circulation-${from}-${to}.csv`, 'report-circulation-csv'),
    h('div', { class: 'report-body' }, h('p', {}, 'Loading…')));
  const popular = h('section', { 'aria-labelledby': 'pop-h', testid: 'report-popular' },
    h('h2', { id: 'pop-h' }, 'Most borrowed titles'),
    csvButton('Download CSV', `/api/reports/popular${qs({ from, to, limit: 50 })}`, `popular-${from}-${to}.csv`, 'report-popular-csv'),
    h('div', { class: 'report-body' }, h('p', {}, 'Loading…')));
  adminFrame('reports', 'Reports', form, circulation, popular, catalogTransfer());
  const rows = (data) => (Array.isArray(data) ? data : data?.days || data?.titles || data?.items || []);
  try {
    const [{ data: circ }, { data: pop }] = await Promise.all([
      api('GET', `/api/reports/circulation${range}`),
      api('GET', `/api/reports/popular${qs({ from, to, limit: 50 })}`),
    ]);
    fill(circulation.querySelector('.report-body'), h('div', { class: 'table-wrap' }, h('table', { class: 'grid', testid: 'report-circulation-table' },
      h('thead', {}, h('tr', {}, CIRCULATION_COLUMNS.map(([, t]) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows(circ).map((d) => h('tr', { testid: 'report-day', 'data-date': d.date },
        CIRCULATION_COLUMNS.map(([k]) => h('td', {}, k.startsWith('fines') ? String(d[k] ?? 0) : (d[k] ?? 0)))))))));
    fill(popular.querySelector('.report-body'), rows(pop).length
      ? h('ol', { testid: 'report-popular-list' }, rows(pop).map((t) => h('li', { testid: 'report-popular-row', 'data-book-id': t.bookId },
        h('a', { href: `#/book/${t.bookId}` }, t.title || t.bookId), ` · ${t.loans} loans`)))
      : h('p', { class: 'empty' }, 'No loans in this range.'));
  } catch (err) {
    showError(form, err);
  }
}

/** Import a CSV of titles and export the whole catalog. */
function catalogTransfer() {
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', testid: 'import-file' });
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'import-submit' }, 'Import');
  const result = h('div', { testid: 'import-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'stack', testid: 'import-form', novalidate: true },
    h('div', { class: 'field' }, h('label', {}, 'CSV file (isbn, title, subtitle, authors, categories, publisher, publishedYear, language, copies)', file)),
    errorBox(), h('div', { class: 'buttons' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, form, async () => {
      fill(result);
      const f = file.files[0];
      if (!f) throw new ApiError(400, { title: 'No file', detail: 'Choose a CSV file to import.' });
      const r = await fetch('/api/books/import', {
        method: 'POST',
        headers: { 'Content-Type': 'text/csv', Accept: 'application/json, application/problem+json', Authorization: `Bearer ${session.access}` },
        body: await f.text(),
      });
      const data = await r.json().catch(() => null);
      if (!r.ok) throw new ApiError(r.status, data || { title: r.statusText }, r.headers.get('Retry-After'));
      fill(result, h('div', { class: `msg ${data.rejected.length ? 'error' : 'ok'}`, testid: 'import-done', 'data-created': data.created, 'data-updated': data.updated, 'data-rejected': data.rejected.length },
        h('strong', {}, `${data.created} created, ${data.updated} updated, ${data.rejected.length} rejected.`),
        data.rejected.length ? h('ul', { testid: 'import-rejected' }, data.rejected.slice(0, 100).map((x) =>
          h('li', {}, `Line ${x.line}: ${[].concat(...Object.values(x.errors || {})).concat(Array.isArray(x.errors) ? x.errors : []).join(' ')}`))) : null));
    });
  });
  const exportButton = h('button', { type: 'button', testid: 'export-download' }, 'Download the catalog (CSV)');
  exportButton.addEventListener('click', () => busy(exportButton, form, () => download('/api/books/export', 'text/csv', 'catalog.csv')));
  return h('section', { 'aria-labelledby': 'transfer-h', testid: 'catalog-transfer' },
    h('h2', { id: 'transfer-h' }, 'Catalog import and export'), form, result, h('div', { class: 'buttons' }, exportButton));
}

// ---------------------------------------------------------------- router

async function route() {
  const raw = location.hash.replace(/^#/, '') || '/search';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  for (const a of document.querySelectorAll('.nav a')) {
    const current = a.getAttribute('href').slice(1).split('/')[1] === parts[0];
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  switch (parts[0]) {
    case 'book': return bookView(parts[1]);
    case 'login': return loginView();
    case 'register': return registerView();
    case 'loans': return loansView(params);
    case 'account': return accountView(params);
    case 'admin': return adminView(parts.slice(1), params);
    default: return searchView(params);
  }
}

window.addEventListener('hashchange', () => {
  // A message stays for the view it was shown on and the next one (e.g. "Welcome" after log-in).
  routeNo += 1;
  if (flashedAt < routeNo - 1) fill(document.getElementById('messages'));
  route();
});
document.getElementById('logout').addEventListener('click', logout);
renderHeader();
route();
