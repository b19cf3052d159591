// ccxt (JavaScript) runs its everyday spot calls against Sandex; run by
// test_client_matrix.py as `node everyday.mjs`.
//
// Input, from the environment only: SANDEX_BASE, SANDEX_API_KEY and SANDEX_SECRET (an
// HMAC secret, or an Ed25519 PEM private key, which ccxt recognises by 'PRIVATE KEY').
// Every URL of ccxt.binance, REST and WebSocket alike, is moved to SANDEX_BASE, and ccxt
// keeps its default options. Output: one JSON object on stdout, the results of every
// call, or the call that failed with the error's class and message. Nothing here ever
// prints a credential.
import ccxt from 'ccxt';

const SYMBOL = 'BTC/USDT';
const QTY = 0.001;
const base = process.env.SANDEX_BASE;
const wsBase = base.replace(/^http/, 'ws');

function local(value) {
    if (typeof value === 'string') {
        return value.replace(/^https?:\/\/[^/]+/, base).replace(/^wss?:\/\/[^/]+/, wsBase);
    }
    if (value && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, local(v)]));
    }
    return value;
}

const api = local(new ccxt.binance().urls.api);
const exchange = new ccxt.binance({
    apiKey: process.env.SANDEX_API_KEY,
    secret: process.env.SANDEX_SECRET,
    urls: { api, test: api },
    timeout: 10000,
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const out = {};

async function everyday() {
    out.step = 'fetchTime';
    out.server_time = await exchange.fetchTime();
    out.step = 'loadMarkets';
    out.btc_listed = SYMBOL in (await exchange.loadMarkets());
    out.step = 'fetchTicker';
    out.last = String((await exchange.fetchTicker(SYMBOL)).last);
    out.step = 'fetchOrderBook';
    const book = await exchange.fetchOrderBook(SYMBOL, 5);
    out.bid = String(book.bids[0][0]);
    out.ask = String(book.asks[0][0]);
    out.step = 'fetchOHLCV';
    out.candles = (await exchange.fetchOHLCV(SYMBOL, '1m', undefined, 10)).length;
    out.step = 'fetchBalance';
    const deadline = Date.now() + 5000;
    let usdt = 0;
    for (;;) {
        usdt = (await exchange.fetchBalance()).free.USDT ?? 0;
        if (usdt === 10000 || Date.now() > deadline) break;
        await sleep(100);
    }
    out.usdt_free = String(usdt);
    const price = exchange.priceToPrecision(SYMBOL, book.bids[0][0] * 0.9);
    out.step = 'createOrder limit';
    const limit = await exchange.createOrder(SYMBOL, 'limit', 'buy', QTY, price);
    out.limit_id = limit.id;
    out.limit_status = limit.info.status;
    out.step = 'fetchOrder';
    out.queried_status = (await exchange.fetchOrder(limit.id, SYMBOL)).info.status;
    out.step = 'fetchOpenOrders';
    out.open_ids = (await exchange.fetchOpenOrders(SYMBOL)).map((o) => o.id);
    out.step = 'cancelOrder';
    out.cancel_status = (await exchange.cancelOrder(limit.id, SYMBOL)).info.status;
    out.step = 'createOrder market';
    const market = await exchange.createOrder(SYMBOL, 'market', 'buy', QTY);
    out.market_id = market.id;
    out.market_status = market.info.status;
    out.market_filled = String(market.filled);
    out.step = 'fetchMyTrades';
    const trades = await exchange.fetchMyTrades(SYMBOL);
    out.trade_order_ids = [...new Set(trades.map((t) => t.order))].sort();
    delete out.step;
}

try {
    await everyday();
} catch (error) {
    const secrets = [process.env.SANDEX_API_KEY, process.env.SANDEX_SECRET].filter(Boolean);
    let msg = String(error?.message ?? error).slice(0, 500);
    for (const secret of secrets) msg = msg.split(secret).join('***');
    out.error = { class: error?.constructor?.name ?? typeof error, msg };
    process.exitCode = 1;
}
console.log(JSON.stringify(out));
