package main

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// commandFactories build the subcommands that other files register (in init).
var commandFactories []func(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command
