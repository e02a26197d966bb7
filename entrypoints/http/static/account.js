/* Account code pages: a mailed link carries its single-use code in the URL fragment
   (#code=…), which browsers never send to a server or put in a log. Fill the form's code
   field from it and drop it from the address bar. Without JavaScript the customer pastes the
   code shown in the mail. */
(function () {
  "use strict";
  var match = /^#code=([A-Za-z0-9_-]{1,128})$/.exec(window.location.hash);
  var field = document.getElementById("token");
  if (!match || !field) return;
  field.value = match[1];
  window.history.replaceState(null, "", window.location.pathname);
})();
