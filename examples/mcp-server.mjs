// A stand-in for an MCP server child: holds a little memory and waits on stdin-less idle.
const name = process.argv[2] ?? 'mcp';
const held = Buffer.alloc(8 * 1024 * 1024, 1);
setInterval(() => {}, 60_000);
console.log(`${name} ready (pid ${process.pid}, ${held.length >> 20} MB)`);
