// A small SMTP server for the browser tests, on a free port: it accepts every
// message and keeps it, as the Rust tests' server does.
"use strict";
const net = require("node:net");

function startSmtp() {
  const messages = [];
  const server = net.createServer((socket) => {
    let buffer = "";
    let inData = false;
    let current = { to: [], data: "" };
    socket.write("220 browser-tests ESMTP\r\n");
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      let end;
      while ((end = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === ".") {
            inData = false;
            messages.push(current);
            current = { to: [], data: "" };
            socket.write("250 2.0.0 Ok: queued\r\n");
          } else {
            current.data += (line.startsWith(".") ? line.slice(1) : line) + "\r\n";
          }
          continue;
        }
        const verb = line.split(/[ :]/)[0].toUpperCase();
        if (verb === "EHLO") socket.write("250-browser-tests\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
        else if (verb === "HELO") socket.write("250 browser-tests\r\n");
        else if (verb === "RCPT") {
          current.to.push(line.slice(line.indexOf("<") + 1, line.indexOf(">")));
          socket.write("250 2.1.5 Ok\r\n");
        } else if (verb === "DATA") {
          inData = true;
          socket.write("354 End data with <CR><LF>.<CR><LF>\r\n");
        } else if (verb === "QUIT") {
          socket.end("221 2.0.0 Bye\r\n");
        } else socket.write("250 2.0.0 Ok\r\n");
      }
    });
    socket.on("error", () => {});
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ server, messages, port: server.address().port }));
  });
}

module.exports = { startSmtp };
