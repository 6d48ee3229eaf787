// Small page helpers shared by the views.

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** Has the browser save `text` as the file `name`. */
export function download(name, text, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
