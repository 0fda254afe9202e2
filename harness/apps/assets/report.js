document.querySelectorAll('select.kind-filter').forEach(function (select) {
  select.addEventListener('change', function () {
    var list = document.getElementById(select.dataset.list);
    list.querySelectorAll('details.unit').forEach(function (unit) {
      var kinds = (unit.dataset.kinds || '').split(' ');
      unit.style.display = (!select.value || kinds.indexOf(select.value) >= 0) ? '' : 'none';
    });
  });
});

// Without a CJK font every Chinese character is drawn as the same empty box. Draw two different
// characters in the page's font: identical pixels mean boxes, and the warning at the top shows.
function glyphsDiffer(first, second) {
  var canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 32;
  var context = canvas.getContext('2d');
  context.font = '24px ' + getComputedStyle(document.body).fontFamily;
  function pixels(text) {
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.fillText(text, 4, 26);
    return context.getImageData(0, 0, canvas.width, canvas.height).data.join();
  }
  return pixels(first) !== pixels(second);
}
if (/[\u4e00-\u9fff]/.test(document.querySelector('main').textContent)) {
  var cjkDrawn = glyphsDiffer('临', '床');
  document.body.dataset.cjk = cjkDrawn ? 'glyphs' : 'boxes';
  document.getElementById('cjk-warning').hidden = cjkDrawn;
}
