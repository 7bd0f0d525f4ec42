// The pixelrl_tf viewer page: inputs, restorations and what each pixel did.
//
// Everything comes from the viewer's own server (see view_server.py): the
// models and their action colours (/api/info), uploads and photographs, the
// restoration job, and per step the image and the action map as PNGs, drawn
// into canvases pixel for pixel (nearest-neighbour zoom). Hovering or
// tapping a pixel asks the server for its actions and values at every step.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    info: null,
    input: null,        // {id, name, width, height, channels, notes}
    target: null,
    job: null,          // id of the shown restoration
    result: null,       // its summary
    step: 0,
    zoom: 1,
    drawToken: 0,
    pixel: null,        // {x, y} asked for
    pixelBusy: false,
    pixelPending: false,
  };

  // ---------------------------------------------------------------------
  // Small helpers.

  function showError(message) {
    const box = $('error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function setStatus(name, text) {
    const status = $('status');
    status.dataset.state = name;
    status.textContent = text;
  }

  function element(tag, properties = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(properties)) {
      if (key === 'dataset') {
        Object.assign(node.dataset, value);
      } else {
        node[key] = value;
      }
    }
    for (const child of children) {
      node.append(child);
    }
    return node;
  }

  function count(number) {
    return number.toLocaleString('en-US');
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Calls the viewer's API; a refusal becomes an Error with its one line.
  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      throw new Error('the viewer cannot be reached (is it still running?)');
    }
    const text = await response.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      throw new Error(body && body.error ? body.error
                                         : `HTTP ${response.status}`);
    }
    return body;
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`cannot load ${url}`));
      image.src = url;
    });
  }

  // The last two parts of a path (`runs/denoise25`), or a name as it is.
  function shortName(name) {
    return name.split('/').filter((part) => part).slice(-2).join('/');
  }

  function modelInfo(index) {
    return state.info.models[index];
  }

  function jobUrl(suffix) {
    return `/api/jobs/${state.job}/${suffix}`;
  }

  // ---------------------------------------------------------------------
  // Start: models, photographs, noise.

  async function init() {
    try {
      state.info = await api('/api/info');
    } catch (error) {
      showError(error.message);
      return;
    }
    const list = $('models');
    state.info.models.forEach((model, index) => {
      list.append(element('li', {
        textContent: `model ${index + 1}: ${model.description} ` +
            `(${model.channels === 3 ? 'colour' : 'gray'}, ` +
            `${model.steps} steps, task ${model.task})`,
      }));
    });
    const select = $('photograph');
    for (const name of state.info.photographs) {
      select.append(element('option', {value: name, textContent: name}));
    }
    const noise = state.info.models[0].noise;
    if (noise) {
      $('noise-kind').textContent = noise.kind.replace('_', ' and ');
      $('noise-level-name').textContent = {
        gaussian: 'sigma (0..255)', poisson: 'peak',
        salt_pepper: 'density (0..1)'}[noise.kind] || 'level';
      $('noise-level').value = noise.level;
    } else {
      $('add-noise').disabled = true;
      $('noise-level').disabled = true;
      $('noise-seed').disabled = true;
      $('noise-note').textContent =
          `(the task ${state.info.models[0].task} adds no noise: ` +
          'upload a corrupted image)';
    }
    wireEvents();
    document.body.dataset.ready = 'true';
  }

  function wireEvents() {
    $('input-file').addEventListener('change', (event) => {
      if (event.target.files.length) {
        uploadFile(event.target.files[0], 'input');
      }
    });
    $('target-file').addEventListener('change', (event) => {
      if (event.target.files.length) {
        uploadFile(event.target.files[0], 'target');
      }
    });
    $('clear-target').addEventListener('click', () => setTarget(null));
    $('use-photograph').addEventListener('click', usePhotograph);
    $('restore').addEventListener('click', restore);
    listenForPixels($('difference-image'));
    listenForPixels($('difference-actions'));
    $('add-noise').addEventListener('change', updateOptions);
    $('step').addEventListener('input', () => {
      drawStep(Number($('step').value));
    });
    $('zoom').addEventListener('change', () => {
      if (state.result) {
        state.zoom = chooseZoom(state.result);
        drawStep(state.step);
      }
    });
    const zone = $('drop-zone');
    zone.addEventListener('dragover', (event) => {
      event.preventDefault();
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('dragging');
      if (event.dataTransfer.files.length) {
        uploadFile(event.dataTransfer.files[0], 'input');
      }
    });
    // A file dropped next to the zone must not replace the page.
    document.addEventListener('dragover', (event) => event.preventDefault());
    document.addEventListener('drop', (event) => event.preventDefault());
  }

  function updateOptions() {
    const noisy = $('add-noise').checked;
    $('target-file').disabled = noisy;
    $('restore').disabled = !state.input;
  }

  // ---------------------------------------------------------------------
  // Inputs.

  async function uploadFile(file, role) {
    showError('');
    const limit = state.info.max_upload_bytes;
    if (file.size > limit) {
      // The server's own words; the file is not sent at all.
      showError(`uploaded file '${file.name}' is ${count(file.size)} bytes; ` +
                `the viewer takes at most ${count(limit)} (--max_upload_mb)`);
      return;
    }
    setStatus('uploading', `reading ${file.name}...`);
    try {
      const info = await api('/api/upload', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/octet-stream',
          'X-File-Name': encodeURIComponent(file.name),
        },
        body: file,
      });
      if (role === 'input') {
        setInput(info);
      } else {
        setTarget(info);
      }
      setStatus('idle', '');
    } catch (error) {
      showError(error.message);
      setStatus('error', '');
    }
  }

  async function usePhotograph() {
    const name = $('photograph').value;
    if (!name) {
      showError('choose a photograph first');
      return;
    }
    showError('');
    try {
      setInput(await api('/api/photograph', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({name}),
      }));
    } catch (error) {
      showError(error.message);
    }
  }

  function describe(info) {
    const notes = info.notes.length ? ` (${info.notes.join('; ')})` : '';
    return `${info.name}: ${info.width}x${info.height}, ` +
        `${info.channels === 3 ? 'colour' : 'gray'}${notes}`;
  }

  function setInput(info) {
    state.input = info;
    $('input-info').hidden = false;
    $('input-preview').src = `/api/images/${info.id}.png`;
    $('input-text').textContent = describe(info);
    $('input-text').dataset.notes = info.notes.join('|');
    updateOptions();
  }

  function setTarget(info) {
    state.target = info;
    $('target-text').textContent = info ? describe(info) : '';
    $('clear-target').hidden = !info;
    if (!info) {
      $('target-file').value = '';
    }
  }

  // ---------------------------------------------------------------------
  // Restoration.

  async function restore() {
    if (!state.input) {
      return;
    }
    showError('');
    const request = {input: state.input.id};
    if ($('add-noise').checked) {
      request.noise = {level: Number($('noise-level').value),
                       seed: Number($('noise-seed').value)};
    } else if (state.target) {
      request.target = state.target.id;
    }
    $('restore').disabled = true;
    $('progress').hidden = false;
    $('progress').value = 0;
    setStatus('queued', 'starting...');
    try {
      const answer = await api('/api/restore', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(request),
      });
      await follow(answer.job);
    } catch (error) {
      showError(error.message);
      setStatus('failed', '');
    } finally {
      $('progress').hidden = true;
      updateOptions();
    }
  }

  async function follow(job) {
    const started = performance.now();
    const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
    for (;;) {
      const status = await api(`/api/jobs/${job}`);
      $('progress').value = status.progress;
      if (status.state === 'done') {
        showResult(job, status.result);
        setStatus('done', `done in ${seconds()} s`);
        return;
      }
      if (status.state === 'failed') {
        throw new Error(status.message);
      }
      setStatus(status.state, `${status.message}: ` +
                `${Math.round(status.progress * 100)}% (${seconds()} s)`);
      await sleep(200);
    }
  }

  function chooseZoom(result) {
    const chosen = Number($('zoom').value);
    if (chosen) {
      return chosen;
    }
    const side = Math.max(result.width, result.height);
    for (const zoom of [8, 4, 2]) {
      if (side * zoom <= 400) {
        return zoom;
      }
    }
    return 1;
  }

  function showResult(job, result) {
    state.job = job;
    state.result = result;
    state.zoom = chooseZoom(result);
    state.pixel = null;
    const columns = $('columns');
    columns.textContent = '';
    result.models.forEach((model, index) => {
      columns.append(buildColumn(index, model, result));
    });
    const step = $('step');
    step.max = result.steps;
    step.value = result.steps;
    const source = result.noise ?
        `${result.input} + ${result.noise} noise (seed ${result.seed})` :
        result.input + (result.target ? `, clean target ${result.target}` :
                                        '');
    $('result-text').textContent =
        `${source}; ${result.width}x${result.height}`;
    $('difference').hidden = result.models.length < 2;
    $('pixel-tables').textContent = '';
    $('pixel').dataset.x = '';
    $('pixel').dataset.y = '';
    for (const canvas of columns.querySelectorAll('canvas')) {
      listenForPixels(canvas);
    }
    $('results').hidden = false;
    drawStep(result.steps);
  }

  function buildColumn(index, model, result) {
    const info = modelInfo(index);
    const column = element('section', {className: 'column',
                                       dataset: {model: String(index)}});
    column.append(element('h2', {
      textContent: `model ${index + 1}: ${shortName(info.name)}`,
    }));
    column.append(element('p', {className: 'description',
                                textContent: info.description}));
    column.append(element('div', {className: 'panels'}, [
      element('figure', {}, [
        element('canvas', {className: 'image-canvas'}),
        element('figcaption', {className: 'image-caption'}),
      ]),
      element('figure', {}, [
        element('canvas', {className: 'actions-canvas'}),
        element('figcaption', {className: 'actions-caption'}),
      ]),
    ]));
    const legend = element('ul', {className: 'legend'});
    info.actions.forEach((action, actionIndex) => {
      const swatch = element('span', {className: 'swatch'});
      swatch.style.backgroundColor = action.color;
      legend.append(element('li', {dataset: {action: String(actionIndex)}},
                            [swatch, action.name]));
    });
    column.append(legend);
    column.append(metricsTable(model));
    column.append(element('figure', {className: 'chart'}, [
      element('img', {src: jobUrl(`${index}/chart.png`),
                      alt: 'fraction of pixels choosing each action at ' +
                           'each step'}),
    ]));
    const stem = `${result.stem}_model${index + 1}`;
    const link = (text, suffix, name, className = '') => element('a', {
      textContent: text, href: jobUrl(`${index}/${suffix}`), download: name,
      className,
    });
    column.append(element('p', {className: 'downloads'}, [
      link('restored image (PNG)', 'restored.png', `${stem}.png`),
      link('action maps (PNG)', 'strip.png', `${stem}_actions.png`),
      link('animation (GIF)', 'animation.gif', `${stem}_actions.gif`),
      link('action map of this step (PNG)', 'actions/1.png',
           `${stem}_actions_t1.png`, 'step-map'),
      link('action counts (PNG)', 'chart.png', `${stem}_counts.png`),
    ]));
    return column;
  }

  function metricsTable(model) {
    if (!model.metrics) {
      return element('p', {
        className: 'no-metrics',
        textContent: 'No clean target: add noise to a clean image, or give ' +
            'the clean target, to see PSNR and SSIM at every step.',
      });
    }
    const names = [['psnr', 'PSNR (dB)', 2], ['ssim', 'SSIM', 4],
                   ['lab', 'Lab distance', 3]]
        .filter(([key]) => key in model.metrics);
    const head = element('tr', {}, [element('th', {textContent: 'step'})]);
    for (const [, title] of names) {
      head.append(element('th', {textContent: title}));
    }
    const table = element('table', {className: 'metrics'}, [head]);
    for (let step = 0; step <= model.steps; step++) {
      const row = element('tr', {dataset: {step: String(step)}}, [
        element('td', {textContent: step === 0 ? '0 (input)' : String(step)}),
      ]);
      for (const [key, , digits] of names) {
        row.append(element('td', {
          textContent: model.metrics[key][step].toFixed(digits),
        }));
      }
      table.append(row);
    }
    return table;
  }

  // ---------------------------------------------------------------------
  // Drawing a step.

  function sizeCanvas(canvas) {
    const {width, height} = state.result;
    canvas.width = width * state.zoom;
    canvas.height = height * state.zoom;
    const context = canvas.getContext('2d');
    context.imageSmoothingEnabled = false;
    return context;
  }

  async function drawInto(canvas, url, token) {
    const image = await loadImage(url);
    if (token !== state.drawToken) {
      return;
    }
    const context = sizeCanvas(canvas);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
  }

  function blank(canvas, text) {
    const context = sizeCanvas(canvas);
    context.fillStyle = '#f6f6f4';
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = '#5c5c5c';
    context.font = '12px sans-serif';
    context.fillText(text, 6, 16);
  }

  async function drawStep(step) {
    const result = state.result;
    state.step = step;
    const token = ++state.drawToken;
    $('results').dataset.drawnStep = '';
    $('step-label').textContent = step === 0 ? '0 (input)' :
        `${step} of ${result.steps}`;
    const drawing = [];
    result.models.forEach((model, index) => {
      const shown = Math.min(step, model.steps);
      const column = document.querySelector(`.column[data-model="${index}"]`);
      const last = shown < step ? ' (its last step)' : '';
      column.querySelector('.image-caption').textContent = shown === 0 ?
          'input' : `image after step ${shown}${last}`;
      drawing.push(drawInto(column.querySelector('.image-canvas'),
                            jobUrl(`${index}/image/${shown}.png`), token));
      const actions = column.querySelector('.actions-canvas');
      const stepMap = column.querySelector('.step-map');
      if (shown === 0) {
        blank(actions, 'step 0: the input, no action yet');
        column.querySelector('.actions-caption').textContent =
            'actions: none at step 0';
        stepMap.hidden = true;
      } else {
        column.querySelector('.actions-caption').textContent =
            `actions of step ${shown}${last}`;
        drawing.push(drawInto(actions, jobUrl(`${index}/actions/${shown}.png`),
                              token));
        stepMap.hidden = false;
        stepMap.href = jobUrl(`${index}/actions/${shown}.png`);
        stepMap.download = stepMap.download.replace(/_t\d+\.png$/,
                                                    `_t${shown}.png`);
      }
      const rows = column.querySelectorAll('table.metrics tr[data-step]');
      for (const row of rows) {
        row.classList.toggle('current', Number(row.dataset.step) === shown);
      }
    });
    if (result.difference) {
      drawDifference(step, token, drawing);
    }
    highlightPixelRows();
    try {
      await Promise.all(drawing);
    } catch (error) {
      showError(error.message);
      return;
    }
    if (token === state.drawToken) {
      $('results').dataset.drawnStep = String(step);
    }
  }

  function drawDifference(step, token, drawing) {
    const difference = state.result.difference;
    const scale = (value) => (value * 255).toFixed(1);
    drawing.push(drawInto($('difference-image'),
                          jobUrl(`difference/image/${step}.png`), token));
    $('difference-image-caption').textContent =
        `|model 1 - model 2| x${difference.gain} after step ${step}: ` +
        `max ${scale(difference.max_abs[step])}, mean ` +
        `${scale(difference.mean_abs[step])} (of 255)`;
    if (step === 0) {
      blank($('difference-actions'), 'step 0: no action yet');
      $('difference-actions-caption').textContent = 'actions: none at step 0';
    } else {
      drawing.push(drawInto($('difference-actions'),
                            jobUrl(`difference/actions/${step}.png`), token));
      const percent = (difference.actions_differ[step - 1] * 100).toFixed(1);
      $('difference-actions-caption').textContent =
          `actions differ at ${percent}% of the pixels (magenta) in ` +
          `step ${step}`;
    }
  }

  // ---------------------------------------------------------------------
  // One pixel.

  function listenForPixels(canvas) {
    canvas.addEventListener('pointermove', onPointer);
    canvas.addEventListener('pointerdown', onPointer);
  }

  function onPointer(event) {
    const canvas = event.currentTarget;
    const rect = canvas.getBoundingClientRect();
    const {width, height} = state.result;
    const x = Math.floor((event.clientX - rect.left) / rect.width * width);
    const y = Math.floor((event.clientY - rect.top) / rect.height * height);
    if (x < 0 || y < 0 || x >= width || y >= height) {
      return;
    }
    if (state.pixel && state.pixel.x === x && state.pixel.y === y) {
      return;
    }
    state.pixel = {x, y};
    if (state.pixelBusy) {
      state.pixelPending = true;
    } else {
      fetchPixel();
    }
  }

  async function fetchPixel() {
    state.pixelBusy = true;
    try {
      do {
        state.pixelPending = false;
        const {x, y} = state.pixel;
        const job = state.job;
        const data = await api(jobUrl(`pixel?x=${x}&y=${y}`));
        if (!state.pixelPending && job === state.job) {
          showPixel(data);
        }
      } while (state.pixelPending);
    } catch (error) {
      showError(error.message);
    } finally {
      state.pixelBusy = false;
    }
  }

  function formatValue(values) {
    return values.map((value) => (value * 255).toFixed(1)).join(', ');
  }

  function showPixel(data) {
    const tables = $('pixel-tables');
    tables.textContent = '';
    data.models.forEach((model, index) => {
      const info = modelInfo(index);
      const table = element('table', {className: 'pixel-table',
                                      dataset: {model: String(index)}});
      table.append(element('caption', {
        textContent: `model ${index + 1}, pixel (${data.x}, ${data.y})`,
      }));
      table.append(element('tr', {}, [
        element('th', {textContent: 'step'}),
        element('th', {textContent: 'action'}),
        element('th', {textContent: 'value after (of 255)'}),
      ]));
      model.values.forEach((values, step) => {
        const action = step === 0 ? null : model.actions[step - 1];
        const cell = element('td', {className: 'action'});
        if (action !== null) {
          const swatch = element('span', {className: 'swatch'});
          swatch.style.backgroundColor = info.actions[action].color;
          cell.append(swatch, info.actions[action].name);
          cell.dataset.action = String(action);
        } else {
          cell.textContent = '(input)';
        }
        table.append(element('tr', {dataset: {
          step: String(step), value: JSON.stringify(values)}}, [
          element('td', {textContent: String(step)}),
          cell,
          element('td', {textContent: formatValue(values)}),
        ]));
      });
      tables.append(table);
    });
    $('pixel-hint').hidden = true;
    $('pixel').dataset.x = String(data.x);
    $('pixel').dataset.y = String(data.y);
    highlightPixelRows();
  }

  function highlightPixelRows() {
    for (const table of document.querySelectorAll('.pixel-table')) {
      const steps = state.result.models[Number(table.dataset.model)].steps;
      for (const row of table.querySelectorAll('tr[data-step]')) {
        const shown = Math.min(state.step, steps);
        row.classList.toggle('current', Number(row.dataset.step) === shown);
      }
    }
  }

  init();
})();
