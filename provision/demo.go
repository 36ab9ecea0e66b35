package provision

import (
	"fmt"

	"github.com/callbridge/callbridge"
)

// DemoPassword is the password of every demo user. The demo runs on loopback only.
const DemoPassword = "demo"

// demoAgents are the display names of agent1…agent5.
var demoAgents = [...]string{"Agent One", "Agent Two", "Agent Three", "Agent Four", "Agent Five"}

// Demo returns the provisioning of the embedded default (`callbridge serve` with no flags):
// tenant "demo" ("Demo Co") on DID 18005550199 with queue "support", agents agent1…agent5
// (devices 1001…1005 on the simulated PBX, interfaces SIM/1001…SIM/1005, all in support) and
// supervisor1, every one with password DemoPassword. Wrap-up is 10 s; attached data IVR_LANG,
// IVR_ACCOUNT, IVR_REASON; reason codes break, lunch, meeting, training. The tenant is marked
// Demo, so that a later run that is not the demo removes it (Store.DropDemo).
//
// Each call returns a new value, which the caller may modify. It passes Validate.
func Demo() callbridge.Provisioning {
	t := callbridge.TenantConfig{
		ID:            "demo",
		Name:          "Demo Co",
		DIDs:          []string{"18005550199"},
		AttachedData:  []string{"IVR_LANG", "IVR_ACCOUNT", "IVR_REASON"},
		WrapUpSeconds: 10,
		ReasonCodes:   []string{"break", "lunch", "meeting", "training"},
		Queues:        []callbridge.QueueConfig{{Name: "support"}},
		Demo:          true,
	}
	for i, name := range demoAgents {
		ext := fmt.Sprintf("%d", 1001+i)
		t.Users = append(t.Users, callbridge.UserConfig{
			Username:  fmt.Sprintf("agent%d", i+1),
			Password:  DemoPassword,
			Role:      callbridge.RoleAgent,
			Name:      name,
			Device:    callbridge.DeviceID(ext),
			Interface: "SIM/" + ext,
			Queues:    []callbridge.QueueName{"support"},
		})
	}
	t.Users = append(t.Users, callbridge.UserConfig{
		Username: "supervisor1",
		Password: DemoPassword,
		Role:     callbridge.RoleSupervisor,
		Name:     "Supervisor One",
	})
	return callbridge.Provisioning{Tenants: []callbridge.TenantConfig{t}}
}

// DemoLogins returns the usernames of Demo() in document order, for the startup banner:
// agent1, agent2, agent3, agent4, agent5, supervisor1. Every one has password DemoPassword.
func DemoLogins() []string {
	var out []string
	for _, t := range Demo().Tenants {
		for _, u := range t.Users {
			out = append(out, u.Username)
		}
	}
	return out
}
