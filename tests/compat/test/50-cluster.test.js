// The core scenarios with their users on different nodes: scenarios 2 and 3 (1:1 text both ways, the
// conversation list, unread counts and mark-as-read across devices) and 4 (group creation and group text), run
// unchanged against two Palaver nodes sharing PostgreSQL and NATS. Devices take the nodes in turn, so alice and
// bob, carol and dave-1, and the three group members are spread over both nodes, and dave's two devices are on
// different nodes. Artifacts go to 02-direct-cluster/ and 03-group-cluster/.
process.env.COMPAT_CLUSTER = '2';
await import('./02-direct.test.js');
await import('./03-group.test.js');
