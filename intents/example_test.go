package intents_test

import (
	"fmt"

	"github.com/qqgate/qqgate/intents"
)

func ExampleParse() {
	s, err := intents.Parse("public_guild_messages, group_and_c2c_event")
	if err != nil {
		panic(err)
	}
	fmt.Println(uint32(s))
	fmt.Println(s.Has(intents.GroupAndC2CEvent))

	_, err = intents.Parse("guilds,group_mesages")
	fmt.Println(err)
	// Output:
	// 1107296256
	// true
	// parse intents: unknown intent "group_mesages"
}

func ExampleSet_String() {
	fmt.Println(intents.Set(1107300352))
	fmt.Println(intents.FullIntents)
	fmt.Println(intents.Guilds | 1<<2)
	fmt.Println(intents.Set(0))
	// Output:
	// direct_message,group_and_c2c_event,public_guild_messages
	// direct_message,group_and_c2c_event,interaction,public_guild_messages
	// guilds,4
	// 0
}

func ExampleSet_Events() {
	fmt.Println(intents.PublicGuildMessages.Events())
	s, ok := intents.IntentOf("C2C_MESSAGE_CREATE")
	fmt.Println(s, ok)
	// Output:
	// [AT_MESSAGE_CREATE PUBLIC_MESSAGE_DELETE]
	// group_and_c2c_event true
}

func ExampleDefaultLevels() {
	for i, l := range intents.DefaultLevels() {
		fmt.Printf("%d %-19s %d %s\n", i, l.Name, uint32(l.Intents), l.Intents)
	}
	// Output:
	// 0 full                1174409216 direct_message,group_and_c2c_event,interaction,public_guild_messages
	// 1 full-no-interaction 1107300352 direct_message,group_and_c2c_event,public_guild_messages
	// 2 group+channel       1107296256 group_and_c2c_event,public_guild_messages
	// 3 channel-only        1073741826 guild_members,public_guild_messages
}
