// The Socket.IO baseline for `hawker bench fanout`: one live room with the same messages and the
// same rules as Hawker's (chat broadcast as it arrives, hearts summed and sent every 200 ms with
// the viewer count, a stock message per sale, purchases gathered into at most one message a
// second, the first at once), built the way Socket.IO's
// documentation shows: join a room, `io.to(room).emit(...)`. PORT picks the port.
const { createServer } = require("node:http");
const { Server } = require("socket.io");

const httpServer = createServer();
const io = new Server(httpServer, { transports: ["websocket"] });

let seq = 0;
let chatId = 0;
let hearts = 0;
let heartsTotal = 0;
let viewers = 0;
let viewersSent = -1;
let remaining = 1000000;
let purchases = 0;
let lastAnnounced = 0;

// As Hawker's hawker-core purchases: one buyer and how many others, at most once a second.
const announcePurchases = () => {
  if (purchases === 0 || Date.now() - lastAnnounced < 1000) return;
  lastAnnounced = Date.now();
  broadcast({ type: "purchase", buyer: "Buyer", product_title: "Bench lipstick", quantity: purchases, others: purchases - 1 });
  purchases = 0;
};

const envelope = (msg) => ({ v: 1, seq: ++seq, now: Date.now(), ...msg });
const broadcast = (msg) => io.to("show").emit("msg", envelope(msg));

io.on("connection", (socket) => {
  socket.join("show");
  viewers += 1;
  socket.emit("msg", envelope({ type: "snapshot", live: true, viewers, hearts: heartsTotal, chat: [] }));
  socket.on("chat", (m) => {
    if (typeof m?.text !== "string" || m.text.length === 0 || m.text.length > 500) return;
    chatId += 1;
    broadcast({ type: "chat", id: chatId, user_id: 1, name: "Viewer", role: "buyer", host: false, text: m.text, at: Date.now() });
  });
  socket.on("hearts", (m) => {
    hearts += Math.min(Number(m?.count) || 0, 50);
  });
  // A sale, as Hawker announces one: units left, and who bought.
  socket.on("buy", () => {
    remaining -= 1;
    broadcast({ type: "sale_left", id: 1, remaining });
    purchases += 1;
    announcePurchases();
  });
  socket.on("disconnect", () => {
    viewers -= 1;
  });
});

setInterval(() => {
  announcePurchases();
  if (hearts > 0) {
    heartsTotal += hearts;
    broadcast({ type: "hearts", count: hearts, total: heartsTotal });
    hearts = 0;
  }
  if (viewers !== viewersSent) {
    viewersSent = viewers;
    broadcast({ type: "viewers", count: viewers });
  }
}, 200);

httpServer.listen(Number(process.env.PORT || 3000), "127.0.0.1");
