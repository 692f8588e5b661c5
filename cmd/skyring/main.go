// Command skyring runs a Skyring node (`skyring run`), prints its version
// (`skyring version`) and drives load against one (`skyring bench`). See
// package skyringcli for the flags.
package main

import (
	"os"

	"github.com/skyring/skyring/cmd/skyringcli"
)

func main() { os.Exit(skyringcli.New().Main(os.Args)) }
