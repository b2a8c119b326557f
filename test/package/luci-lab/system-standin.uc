// A stand-in for procd's `system` object (board, info), which LuCI's page header asks for: the lab has no procd.
import * as ubus from 'ubus';
import * as uloop from 'uloop';

uloop.init();
// ubusd's socket can be there before it answers (a busy machine): ask again for up to 15 s.
let conn = null;
for (let i = 0; i < 150 && !conn; i++) {
	conn = ubus.connect('/var/run/ubus/ubus.sock');
	if (!conn)
		system('sleep 0.1');
}
conn.publish('system', {
	board: {
		call: function(req) {
			return {
				kernel: '6.6', hostname: 'OpenWrt', system: 'lab', model: 'sluice LuCI lab', board_name: 'lab',
				release: { distribution: 'OpenWrt', version: '24.10', revision: 'lab', target: 'x86/64',
					description: 'OpenWrt 24.10 (LuCI lab)' }
			};
		},
		args: {}
	},
	info: {
		call: function(req) {
			return { uptime: 1, localtime: time(), load: [ 0, 0, 0 ],
				memory: { total: 268435456, free: 134217728, shared: 0, buffered: 0 }, swap: { total: 0, free: 0 } };
		},
		args: {}
	}
});
uloop.run();
